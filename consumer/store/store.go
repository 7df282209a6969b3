// Package store keeps the consumer's aggregates and Kafka offsets in MySQL
// or MariaDB.
//
// Exactly-once counting rests on one rule: the aggregates of a run of lines
// and the Kafka offset after that run are written in one transaction
// (Commit). The offsets are written with a compare-and-set on the value the
// consumer last read or wrote, so a consumer whose view is stale (another
// process took the partition over, or a commit it thought failed did go
// through) cannot write aggregates twice: Commit returns ErrConflict or
// reports the earlier commit, and the consumer starts again from the
// offsets in MySQL.
//
// The SQL is the subset MariaDB 10.11 and MySQL 8 share; migrations are
// embedded and versioned in schema_migrations.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/trafficlab/trafficlab/consumer/config"
)

// Store is a handle on the consumer's database.
type Store struct {
	db *sql.DB
}

// New wraps an open database.
func New(db *sql.DB) *Store { return &Store{db: db} }

// DB returns the underlying database.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Open returns a Store for the configured server. It does not connect: the
// first query does, so a server that is down is retried by the caller
// rather than failing start-up.
func Open(c config.MySQL) (*Store, error) { return OpenDial(c, nil) }

// OpenDial is Open with the connections made by dial (nil: the network's
// own), such as provision's tunnel through a host's SSH connection.
func OpenDial(c config.MySQL, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Store, error) {
	mc := mysql.NewConfig()
	mc.DialFunc = dial
	mc.User, mc.Passwd, mc.DBName = c.User, c.Password, c.Database
	mc.Net, mc.Addr = c.Addr()
	mc.Loc = time.UTC
	mc.ParseTime = true
	// Rows matched, not rows changed: the offset compare-and-set and the
	// additive upserts read "0 rows" as "no such row".
	mc.ClientFoundRows = true
	// Parameters are interpolated client-side: one round trip per statement
	// instead of prepare+execute+close, and nothing server-side to leak.
	mc.InterpolateParams = true
	mc.Timeout = 5 * time.Second
	mc.ReadTimeout = 60 * time.Second
	mc.WriteTimeout = 60 * time.Second
	mc.Params = map[string]string{"time_zone": "'+00:00'"}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxLifetime(time.Hour)
	return New(db), nil
}

// ErrConflict says the offsets in MySQL are not the ones the commit was
// built on: another consumer moved them. Nothing was written; the consumer
// must drop what it aggregated and resume from Offsets.
var ErrConflict = errors.New("kafka offsets in MySQL moved under this consumer")

// PartitionOffsets says which lines of a partition a commit covers.
type PartitionOffsets struct {
	Partition int32
	// Stored says whether MySQL has a row for the partition; From is its
	// next_offset, the first offset of the lines committed.
	Stored bool
	From   int64
	// To is the offset after the last line committed.
	To int64
}

// Offsets returns the next offset to consume per partition, as committed
// for group and topic.
func (s *Store) Offsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	rows, err := s.db.QueryContext(ctx, qOffsets, group, topic)
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	defer rows.Close()
	out := make(map[int32]int64)
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("read offsets: %w", err)
		}
		out[p] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	return out, nil
}

const qOffsets = `SELECT kafka_partition, next_offset FROM kafka_offsets WHERE consumer_group = ? AND topic = ?`

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	return nil
}

// isDuplicate reports a duplicate-key error (ER_DUP_ENTRY).
func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// LogDriverTo sends the MySQL driver's own messages (a dropped idle
// connection, say) to log at debug level instead of the standard logger:
// the store's callers report what matters themselves.
func LogDriverTo(log *slog.Logger) { _ = mysql.SetLogger(driverLogger{log}) }

type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Print(v ...any) { d.log.Debug("mysql driver: " + fmt.Sprint(v...)) }

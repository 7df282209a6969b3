package store

import (
	"context"
	"database/sql"

	"fmt"
	"time"
)

// AlertRow is one stored alert life.
type AlertRow struct {
	ID        int64
	Rule      string
	Scope     string // a backend; "" is the total
	State     string // AlertFiring or AlertResolved
	Start     time.Time
	End       time.Time // zero while firing
	Value     float64
	Baseline  float64
	LastValue float64
	Updated   time.Time
}

// Alert states.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

func openKey(rule, scope string) string { return rule + "/" + scope }

const alertCols = `id, rule, scope, state, started_at, ended_at, value, baseline, last_value, updated_at`

func scanAlerts(rows *sql.Rows) ([]AlertRow, error) {
	defer rows.Close()
	var out []AlertRow
	for rows.Next() {
		var a AlertRow
		var end sql.NullTime
		if err := rows.Scan(&a.ID, &a.Rule, &a.Scope, &a.State, &a.Start, &end, &a.Value, &a.Baseline, &a.LastValue, &a.Updated); err != nil {
			return nil, err
		}
		a.End = end.Time
		out = append(out, a)
	}
	return out, rows.Err()
}

const qFiringAlerts = `SELECT ` + alertCols + ` FROM alerts WHERE state = 'firing' ORDER BY started_at, rule, scope`

// FiringAlerts returns the alerts firing now.
func (s *Store) FiringAlerts(ctx context.Context) ([]AlertRow, error) {
	rows, err := s.db.QueryContext(ctx, qFiringAlerts)
	if err != nil {
		return nil, fmt.Errorf("read firing alerts: %w", err)
	}
	out, err := scanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("read firing alerts: %w", err)
	}
	return out, nil
}

const qAlertHistory = `SELECT ` + alertCols + ` FROM alerts
WHERE started_at < ? AND (ended_at IS NULL OR ended_at >= ?)
ORDER BY started_at DESC, id DESC LIMIT ?`

// AlertHistory returns the alerts that were firing at some time in
// [from, to), newest first, at most limit.
func (s *Store) AlertHistory(ctx context.Context, from, to time.Time, limit int) ([]AlertRow, error) {
	rows, err := s.db.QueryContext(ctx, qAlertHistory, to.UTC(), from.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	out, err := scanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	return out, nil
}

const qFireAlert = `INSERT INTO alerts (rule, scope, state, open_key, started_at, value, baseline, last_value, updated_at)
VALUES (?, ?, 'firing', ?, ?, ?, ?, ?, ?)`

// FireAlert records that rule fired on scope. It returns false when that
// alert is already firing (another evaluator recorded it first).
func (s *Store) FireAlert(ctx context.Context, rule, scope string, start time.Time, value, baseline float64) (bool, error) {
	_, err := s.db.ExecContext(ctx, qFireAlert, rule, scope, openKey(rule, scope), start.UTC(), value, baseline, value, time.Now().UTC())
	if isDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record alert %s/%s: %w", rule, scope, err)
	}
	return true, nil
}

const qResolveAlert = `UPDATE alerts SET state = 'resolved', open_key = NULL, ended_at = ?, last_value = ?, updated_at = ?
WHERE open_key = ?`

// ResolveAlert records that the firing alert rule/scope resolved at end.
func (s *Store) ResolveAlert(ctx context.Context, rule, scope string, end time.Time, value float64) error {
	if _, err := s.db.ExecContext(ctx, qResolveAlert, end.UTC(), value, time.Now().UTC(), openKey(rule, scope)); err != nil {
		return fmt.Errorf("resolve alert %s/%s: %w", rule, scope, err)
	}
	return nil
}

// Notice is a sent notification of an alert.
type Notice struct {
	Channel string
	Kind    string // AlertFiring or AlertResolved
	SentAt  time.Time
	Count   int
}

const qNoticeAlerts = `SELECT ` + alertCols + ` FROM alerts WHERE state = 'firing' OR ended_at >= ?`

const qNotices = `SELECT n.alert_id, n.channel, n.kind, n.sent_at, n.sent_count
FROM alert_notices n JOIN alerts a ON a.id = n.alert_id
WHERE a.state = 'firing' OR a.ended_at >= ?`

// AlertsForNotice returns the firing alerts and those resolved since
// since, with the notices already sent for each.
func (s *Store) AlertsForNotice(ctx context.Context, since time.Time) ([]AlertRow, map[int64][]Notice, error) {
	rows, err := s.db.QueryContext(ctx, qNoticeAlerts, since.UTC())
	if err != nil {
		return nil, nil, fmt.Errorf("read alerts to notify: %w", err)
	}
	alerts, err := scanAlerts(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("read alerts to notify: %w", err)
	}
	nrows, err := s.db.QueryContext(ctx, qNotices, since.UTC())
	if err != nil {
		return nil, nil, fmt.Errorf("read notices: %w", err)
	}
	defer nrows.Close()
	notices := map[int64][]Notice{}
	for nrows.Next() {
		var id int64
		var n Notice
		if err := nrows.Scan(&id, &n.Channel, &n.Kind, &n.SentAt, &n.Count); err != nil {
			return nil, nil, fmt.Errorf("read notices: %w", err)
		}
		notices[id] = append(notices[id], n)
	}
	if err := nrows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read notices: %w", err)
	}
	return alerts, notices, nil
}

const qRecordNotice = `INSERT INTO alert_notices (alert_id, channel, kind, sent_at, sent_count) VALUES (?, ?, ?, ?, 1)
ON DUPLICATE KEY UPDATE sent_at = ?, sent_count = sent_count + 1`

// RecordNotice records that a notice was sent.
func (s *Store) RecordNotice(ctx context.Context, alertID int64, channel, kind string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, qRecordNotice, alertID, channel, kind, at.UTC(), at.UTC()); err != nil {
		return fmt.Errorf("record %s notice of alert %d: %w", channel, alertID, err)
	}
	return nil
}

const (
	qLeaseInsert = `INSERT INTO alert_lease (name, holder, expires_at) VALUES (?, ?, ?)`
	qLeaseTake   = `UPDATE alert_lease SET holder = ?, expires_at = ? WHERE name = ? AND (holder = ? OR expires_at < ?)`
)

// TakeLease takes or renews the lease name for holder until now+ttl and
// reports whether holder has it: another holder's unexpired lease is
// left alone. The server's clock is not used: the consumers' clocks are
// synchronised by chrony, and the lease is far longer than their skew.
func (s *Store) TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now().UTC()
	res, err := s.db.ExecContext(ctx, qLeaseTake, holder, now.Add(ttl), name, holder, now)
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	_, err = s.db.ExecContext(ctx, qLeaseInsert, name, holder, now.Add(ttl))
	if isDuplicate(err) {
		return false, nil // someone else holds it
	}
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return true, nil
}

const qLeaseRelease = `UPDATE alert_lease SET expires_at = ? WHERE name = ? AND holder = ?`

// ReleaseLease gives the lease up so another holder need not wait for it
// to expire.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.db.ExecContext(ctx, qLeaseRelease, time.Unix(0, 0).UTC(), name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// MinutePoint is one minute of one backend, as the alert rules read it.
type MinutePoint struct {
	Minute   time.Time
	Backend  string
	Requests uint64
	Errors   uint64 // 5xx
}

const qMinutePoints = `SELECT minute, backend, requests, status_5xx FROM traffic_minute WHERE minute >= ? AND minute < ?`

// MinutePoints returns the requests and 5xx responses per minute and
// backend in [from, to).
func (s *Store) MinutePoints(ctx context.Context, from, to time.Time) ([]MinutePoint, error) {
	rows, err := s.db.QueryContext(ctx, qMinutePoints, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read minute points: %w", err)
	}
	defer rows.Close()
	var out []MinutePoint
	for rows.Next() {
		var p MinutePoint
		if err := rows.Scan(&p.Minute, &p.Backend, &p.Requests, &p.Errors); err != nil {
			return nil, fmt.Errorf("read minute points: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read minute points: %w", err)
	}
	return out, nil
}

const qFirstSeen = `SELECT backend, MIN(minute) FROM traffic_minute GROUP BY backend`

// FirstSeen returns each backend's first stored minute.
func (s *Store) FirstSeen(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, qFirstSeen)
	if err != nil {
		return nil, fmt.Errorf("read first minutes: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var b string
		var t sql.NullTime
		if err := rows.Scan(&b, &t); err != nil {
			return nil, fmt.Errorf("read first minutes: %w", err)
		}
		if t.Valid {
			out[b] = t.Time
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read first minutes: %w", err)
	}
	return out, nil
}

package nginxlog

import (
	"sync/atomic"
	"time"
)

// timeValue is a parsed time before it becomes a time.Time.
type timeValue struct {
	unix int64 // seconds since the epoch
	off  int   // UTC offset in seconds
}

func (t timeValue) time() time.Time {
	return time.Unix(t.unix, 0).In(zone(t.off))
}

// parseTimeLocal parses $time_local, "25/Nov/2026:08:01:02 +0800", by hand:
// time.Parse is several times slower and allocates a zone per call.
func parseTimeLocal(b []byte) (timeValue, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' {
		return timeValue{}, false
	}
	day, ok1 := num2(b[0], b[1])
	mon := month(b[3], b[4], b[5])
	year, ok2 := num4(b[7:11])
	hh, ok3 := num2(b[12], b[13])
	mm, ok4 := num2(b[15], b[16])
	ss, ok5 := num2(b[18], b[19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return timeValue{}, false
	}
	oh, ok6 := num2(b[22], b[23])
	om, ok7 := num2(b[24], b[25])
	if !ok6 || !ok7 {
		return timeValue{}, false
	}
	return mkTime(year, mon, day, hh, mm, ss, b[21], oh, om)
}

// parseTimeISO parses $time_iso8601, "2026-11-25T08:01:02+08:00"; a "Z"
// offset is accepted too although nginx writes "+00:00".
func parseTimeISO(b []byte) (timeValue, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return timeValue{}, false
	}
	year, ok1 := num4(b[0:4])
	mon, ok2 := num2(b[5], b[6])
	day, ok3 := num2(b[8], b[9])
	hh, ok4 := num2(b[11], b[12])
	mm, ok5 := num2(b[14], b[15])
	ss, ok6 := num2(b[17], b[18])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return timeValue{}, false
	}
	if len(b) == 20 && b[19] == 'Z' {
		return mkTime(year, mon, day, hh, mm, ss, '+', 0, 0)
	}
	if len(b) != 25 || b[22] != ':' {
		return timeValue{}, false
	}
	oh, ok7 := num2(b[20], b[21])
	om, ok8 := num2(b[23], b[24])
	if !ok7 || !ok8 {
		return timeValue{}, false
	}
	return mkTime(year, mon, day, hh, mm, ss, b[19], oh, om)
}

func mkTime(year, mon, day, hh, mm, ss int, sign byte, oh, om int) (timeValue, bool) {
	if mon < 1 || mon > 12 || day < 1 || day > daysIn(mon, year) || hh > 23 || mm > 59 || ss > 59 || oh > 23 || om > 59 {
		return timeValue{}, false
	}
	off := oh*3600 + om*60
	switch sign {
	case '+':
	case '-':
		off = -off
	default:
		return timeValue{}, false
	}
	secs := daysFromCivil(year, mon, day)*86400 + int64(hh*3600+mm*60+ss) - int64(off)
	return timeValue{unix: secs, off: off}, true
}

func num2(a, b byte) (int, bool) {
	x, y := a-'0', b-'0'
	return int(x)*10 + int(y), x <= 9 && y <= 9
}

func num4(b []byte) (int, bool) {
	h, ok1 := num2(b[0], b[1])
	l, ok2 := num2(b[2], b[3])
	return h*100 + l, ok1 && ok2
}

// month maps nginx's English month abbreviations to 1..12, 0 if none.
func month(a, b, c byte) int {
	switch uint32(a)<<16 | uint32(b)<<8 | uint32(c) {
	case 'J'<<16 | 'a'<<8 | 'n':
		return 1
	case 'F'<<16 | 'e'<<8 | 'b':
		return 2
	case 'M'<<16 | 'a'<<8 | 'r':
		return 3
	case 'A'<<16 | 'p'<<8 | 'r':
		return 4
	case 'M'<<16 | 'a'<<8 | 'y':
		return 5
	case 'J'<<16 | 'u'<<8 | 'n':
		return 6
	case 'J'<<16 | 'u'<<8 | 'l':
		return 7
	case 'A'<<16 | 'u'<<8 | 'g':
		return 8
	case 'S'<<16 | 'e'<<8 | 'p':
		return 9
	case 'O'<<16 | 'c'<<8 | 't':
		return 10
	case 'N'<<16 | 'o'<<8 | 'v':
		return 11
	case 'D'<<16 | 'e'<<8 | 'c':
		return 12
	}
	return 0
}

func daysIn(mon, year int) int {
	switch mon {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm), for years 0..9999.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// maxOffMin is the largest UTC offset, in minutes, a log time can carry.
const maxOffMin = 23*60 + 59

// zones caches one *time.Location per UTC offset (by minute), shared by all
// parsers: time.FixedZone allocates, and a log has one or two offsets.
var zones [2*maxOffMin + 1]atomic.Pointer[time.Location]

func zone(off int) *time.Location {
	z := &zones[off/60+maxOffMin]
	if l := z.Load(); l != nil {
		return l
	}
	// An unnamed zone, so that formatting shows the numeric offset.
	z.CompareAndSwap(nil, time.FixedZone("", off))
	return z.Load()
}

package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AutoCompaction decodes --auto-compaction-mode and
// --auto-compaction-retention as etcd does.
//
// In "periodic" mode the retention is a Go duration ("30m", "1h30m") or a
// bare non-negative integer number of hours ("1" = 1h); it is returned in
// retention and revisions is 0. In "revision" mode the retention is a
// non-negative integer number of revisions to keep, returned in revisions;
// retention is 0. A retention of zero in either mode means auto compaction
// is off. Any other mode, or a retention that does not parse or is
// negative, is an error naming the flag and the value.
func (c *Config) AutoCompaction() (mode string, retention time.Duration, revisions int64, err error) {
	mode = c.AutoCompactionMode
	raw := strings.TrimSpace(c.AutoCompactionRetention)
	switch mode {
	case CompactionModePeriodic:
		if h, perr := strconv.ParseInt(raw, 10, 64); perr == nil {
			if h < 0 {
				return mode, 0, 0, c.retentionErr("must not be negative")
			}
			if h > int64(time.Duration(1<<63-1)/time.Hour) {
				return mode, 0, 0, c.retentionErr("is too large")
			}
			return mode, time.Duration(h) * time.Hour, 0, nil
		}
		d, perr := time.ParseDuration(raw)
		if perr != nil {
			return mode, 0, 0, c.retentionErr("want a duration such as \"1h\" or \"30m\", or a whole number of hours")
		}
		if d < 0 {
			return mode, 0, 0, c.retentionErr("must not be negative")
		}
		return mode, d, 0, nil
	case CompactionModeRevision:
		n, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil {
			return mode, 0, 0, c.retentionErr("revision mode wants a whole number of revisions")
		}
		if n < 0 {
			return mode, 0, 0, c.retentionErr("must not be negative")
		}
		return mode, 0, n, nil
	default:
		return mode, 0, 0, fmt.Errorf("invalid value %q for %s: want %q or %q",
			mode, c.where("auto-compaction-mode"), CompactionModePeriodic, CompactionModeRevision)
	}
}

func (c *Config) retentionErr(reason string) error {
	return fmt.Errorf("invalid value %q for %s (%s mode): %s",
		c.AutoCompactionRetention, c.where("auto-compaction-retention"), c.AutoCompactionMode, reason)
}

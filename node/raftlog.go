package node

import (
	"fmt"

	"go.uber.org/zap"
)

// raftLogger adapts zap to raft's Logger. raft's Fatal and Panic levels
// panic, as raft expects them to stop the process.
type raftLogger struct{ s *zap.SugaredLogger }

func newRaftLogger(lg *zap.Logger) raftLogger {
	return raftLogger{s: lg.WithOptions(zap.AddCallerSkip(1)).Sugar().With("component", "raft")}
}

func (l raftLogger) Debug(v ...interface{})                 { l.s.Debug(v...) }
func (l raftLogger) Debugf(format string, v ...interface{}) { l.s.Debugf(format, v...) }
func (l raftLogger) Info(v ...interface{})                  { l.s.Info(v...) }
func (l raftLogger) Infof(format string, v ...interface{})  { l.s.Infof(format, v...) }
func (l raftLogger) Warning(v ...interface{})               { l.s.Warn(v...) }
func (l raftLogger) Warningf(format string, v ...interface{}) {
	l.s.Warnf(format, v...)
}
func (l raftLogger) Error(v ...interface{})                 { l.s.Error(v...) }
func (l raftLogger) Errorf(format string, v ...interface{}) { l.s.Errorf(format, v...) }
func (l raftLogger) Fatal(v ...interface{})                 { l.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...interface{}) { l.Panicf(format, v...) }
func (l raftLogger) Panic(v ...interface{}) {
	msg := fmt.Sprint(v...)
	l.s.Error(msg)
	panic(RaftPanic(msg))
}
func (l raftLogger) Panicf(format string, v ...interface{}) {
	msg := fmt.Sprintf(format, v...)
	l.s.Error(msg)
	panic(RaftPanic(msg))
}

// RaftPanic is the value raft panics with when it finds its own state
// impossible (a log that lost acknowledged entries, a commit index beyond
// the log): the simulator reports it as a violation of the seed.
type RaftPanic string

func (p RaftPanic) Error() string { return "raft: " + string(p) }

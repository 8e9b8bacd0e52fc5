package node

import (
	"errors"
	"fmt"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Alarms are replicated state, as in etcd: raised and cleared through raft,
// kept in the store's alarm bucket. While NOSPACE is raised anywhere in the
// cluster every member refuses writes that add data (puts, txns that put,
// lease grants) at apply time, the same on every member; reads, deletes and
// compaction still work, so an operator can free space, defragment and
// disarm the alarm.

// ErrNoSpace: the cluster's NOSPACE alarm is raised.
var ErrNoSpace = errors.New("node: database space exceeded")

// ErrCorrupt: the cluster's CORRUPT alarm is raised. As in etcd, every
// member then refuses writes, compactions and lease grants and revokes at
// apply time; reads (outside the log) still work, and the alarm can be
// cleared once the corrupt member has been replaced.
var ErrCorrupt = errors.New("etcdserver: corrupt cluster")

var alarmBucket = []byte("alarm")

type alarmKey struct {
	member uint64
	typ    pb.AlarmType
}

// alarmBucketKey is the bucket key of an alarm, as etcd stores it: the
// encoded AlarmMember (the value is empty).
func alarmBucketKey(k alarmKey) []byte {
	b, err := marshalOpts.Marshal(&pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
	if err != nil {
		panic(fmt.Sprintf("node: encoding alarm: %v", err)) // two varints always encode
	}
	return b
}

func (c *Core) loadAlarms() error {
	c.alarms = map[alarmKey]bool{}
	return c.kv.AuxForEach(alarmBucket, func(k, _ []byte) error {
		var am pb.AlarmMember
		if err := proto.Unmarshal(k, &am); err != nil {
			return fmt.Errorf("node: bad alarm record key %x: %w", k, err)
		}
		c.alarms[alarmKey{am.GetMemberID(), am.GetAlarm()}] = true
		return nil
	})
}

// Alarms lists the raised alarms ordered by member and type.
func (c *Core) Alarms() []*pb.AlarmMember {
	out := make([]*pb.AlarmMember, 0, len(c.alarms))
	for k := range c.alarms {
		out = append(out, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MemberID != out[j].MemberID {
			return out[i].MemberID < out[j].MemberID
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out
}

func (c *Core) corrupt() bool {
	for k := range c.alarms {
		if k.typ == pb.AlarmType_CORRUPT {
			return true
		}
	}
	return false
}

// refusedWhenCorrupt tells whether a CORRUPT alarm refuses r, as etcd's
// corrupt applier does.
func refusedWhenCorrupt(r *pb.InternalRaftRequest) bool {
	return r.GetPut() != nil || r.GetDeleteRange() != nil || r.GetTxn() != nil || r.GetRange() != nil ||
		r.GetCompaction() != nil || r.GetLeaseGrant() != nil || r.GetLeaseRevoke() != nil
}

func (c *Core) noSpace() bool {
	for k := range c.alarms {
		if k.typ == pb.AlarmType_NOSPACE {
			return true
		}
	}
	return false
}

func (c *Core) applyAlarm(r *pb.AlarmRequest) *pb.AlarmResponse {
	k := alarmKey{r.GetMemberID(), r.GetAlarm()}
	resp := &pb.AlarmResponse{Header: c.Header(c.kv.Rev())}
	switch r.GetAction() {
	case pb.AlarmRequest_ACTIVATE:
		if r.GetAlarm() == pb.AlarmType_NONE {
			break
		}
		if !c.alarms[k] {
			c.alarms[k] = true
			c.kv.AuxPut(alarmBucket, alarmBucketKey(k), []byte{})
			c.lg.Warn("alarm raised", zap.String("alarm", k.typ.String()), zap.String("alarm-member-id", fmt.Sprintf("%x", k.member)))
		}
		resp.Alarms = []*pb.AlarmMember{{MemberID: k.member, Alarm: k.typ}}
	case pb.AlarmRequest_DEACTIVATE:
		var cleared []alarmKey
		for a := range c.alarms {
			if (r.GetMemberID() == 0 || a.member == k.member) && (r.GetAlarm() == pb.AlarmType_NONE || a.typ == k.typ) {
				cleared = append(cleared, a)
			}
		}
		sort.Slice(cleared, func(i, j int) bool { return alarmBucketKeyLess(cleared[i], cleared[j]) })
		for _, a := range cleared {
			delete(c.alarms, a)
			c.kv.AuxDelete(alarmBucket, alarmBucketKey(a))
			resp.Alarms = append(resp.Alarms, &pb.AlarmMember{MemberID: a.member, Alarm: a.typ})
			c.lg.Info("alarm cleared", zap.String("alarm", a.typ.String()), zap.String("alarm-member-id", fmt.Sprintf("%x", a.member)))
		}
	default:
		resp.Alarms = c.Alarms()
	}
	return resp
}

func alarmBucketKeyLess(a, b alarmKey) bool {
	if a.member != b.member {
		return a.member < b.member
	}
	return a.typ < b.typ
}

// AddsData tells whether a request would grow the database, which NOSPACE
// forbids.
func AddsData(r *pb.InternalRaftRequest) bool {
	switch {
	case r.GetPut() != nil, r.GetLeaseGrant() != nil:
		return true
	case r.GetTxn() != nil:
		return txnPuts(r.GetTxn())
	}
	return false
}

func txnPuts(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.GetSuccess(), t.GetFailure()} {
		for _, op := range ops {
			if op.GetRequestPut() != nil || (op.GetRequestTxn() != nil && txnPuts(op.GetRequestTxn())) {
				return true
			}
		}
	}
	return false
}

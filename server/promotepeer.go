package server

import (
	"errors"
	"io"
	"net/http"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/node"
)

// A follower asked to promote a learner asks the leader, which alone knows
// how far the learner got, over the peer port, as etcd's
// (/members/promote): the follower's API layer has required the root role
// of the caller (its token or its client certificate), and the leader
// promotes for a member without checking again, so a root known only by
// its certificate, or logged in on the follower, promotes through any
// member. The peer port must only be reachable by members (mutual TLS),
// as for leases (leasepeer.go).

// MemberPromotePath promotes the learner of a pb.MemberPromoteRequest
// body; the answer is a pb.MemberPromoteResponse.
const MemberPromotePath = "/cairn/members/promote"

// peerErrHeader carries, on a non-200 answer of a peer request, the
// error's text, which peerError turns back into the shell's error.
const peerErrHeader = "X-Cairn-Error"

// peerErrors are the errors a peer request's answer can name.
var peerErrors = []error{
	ErrNoLeader, ErrNotLeader, ErrLeaderChanged, ErrCanceled, ErrTimeout, ErrTimeoutDueToLeaderFail,
	ErrMemberNotFound, ErrMemberNotEnoughStarted, ErrMemberNotLearner, ErrLearnerNotReady,
	ErrTooManyLearners, ErrUnhealthy, node.ErrStopped,
}

// peerError is the error whose text is text: one of peerErrors, or a new
// one with that text.
func peerError(text string) error {
	for _, e := range peerErrors {
		if e.Error() == text {
			return e
		}
	}
	return errors.New(text)
}

// PromotePeerHandler serves MemberPromotePath on the peer listener.
func (s *Server) PromotePeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "cairn: POST only", http.StatusMethodNotAllowed)
			return
		}
		if !s.isMemberSender(r) {
			http.Error(w, "cairn: not a member of this cluster", http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLeasePeerBody))
		if err != nil {
			http.Error(w, "cairn: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req pb.MemberPromoteRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, "cairn: "+err.Error(), http.StatusBadRequest)
			return
		}
		var resp *pb.MemberPromoteResponse
		if s.Leader() != s.ID() {
			err = ErrNotLeader
		} else {
			resp, err = s.promoteLocal(r.Context(), &req)
		}
		if err != nil {
			w.Header().Set(peerErrHeader, err.Error())
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		writeProto(w, resp)
	})
}

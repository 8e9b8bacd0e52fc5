package linearizability_test

import (
	"fmt"
	"time"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/linearizability"
)

// Example records three clients against a store and checks the history. Client 2 reads the
// old value after client 1 already saw the new one, which no order of the operations explains.
func Example() {
	clk := clock.NewFake(time.Unix(0, 0))
	now := func() int64 {
		clk.Advance(time.Millisecond)
		return clk.Now().UnixNano()
	}
	rec := linearizability.NewRecorder(now)

	put := rec.Invoke(0, linearizability.Put("k", "1"))
	rec.Return(put, linearizability.Response{Revision: 2})

	lost := rec.Invoke(0, linearizability.Put("k", "2"))
	rec.Unknown(lost) // the client timed out: "2" may be written at any later time, or never

	get := rec.Invoke(1, linearizability.Get("k"))
	rec.Return(get, linearizability.Response{Found: true, Value: "2", Revision: 3})

	res, err := linearizability.Check(linearizability.RegisterModel(), rec.History(), time.Minute)
	fmt.Println(res.Outcome, err)

	stale := rec.Invoke(2, linearizability.Get("k"))
	rec.Return(stale, linearizability.Response{Found: true, Value: "1", Revision: 3})

	res, err = linearizability.Check(linearizability.RegisterModel(), rec.History(), time.Minute)
	fmt.Println(res.Outcome, err)
	// Output:
	// Ok <nil>
	// Illegal <nil>
}

package k8s

// The watch conformance functions k8s.io/apiserver/pkg/storage/etcd3/
// watcher_test.go runs (TestWatch and its subtests), against an external
// server, under both RangeStream modes (the initial-events sync of a watch
// lists through RangeStream when the gate is on).

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/utils/ptr"
)

// progressNotifyServer is the server k8s' ProgressNotify and
// WatchDispatchBookmarkEvents tests use: progress notifications every 1s.
var progressNotifyServer = withServerOptions(serverOptions{progressNotifyInterval: time.Second})

func TestStoreWatch(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		t.Run("Watch", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatch(ctx, t, s)
		})
		t.Run("ClusterScopedWatch", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestClusterScopedWatch(ctx, t, s)
		})
		t.Run("NamespaceScopedWatch", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestNamespaceScopedWatch(ctx, t, s)
		})
		t.Run("DeleteTriggerWatch", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestDeleteTriggerWatch(ctx, t, s)
		})
		t.Run("WatchFromZero", func(t *testing.T) {
			ctx, s, client := newStore(t)
			storagetesting.RunTestWatchFromZero(ctx, t, s, compactStorage(s, client.Client))
		})
		t.Run("WatchFromNonZero", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatchFromNonZero(ctx, t, s)
		})
		t.Run("DelayedWatchDelivery", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestDelayedWatchDelivery(ctx, t, s)
		})
		t.Run("WatchError", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatchError(ctx, t, s)
		})
		t.Run("WatchContextCancel", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatchContextCancel(ctx, t, s)
		})
		t.Run("WatcherTimeout", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatcherTimeout(ctx, t, s)
		})
		t.Run("WatchDeleteEventObjectHaveLatestRV", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, s)
		})
		t.Run("WatchInitializationSignal", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatchInitializationSignal(ctx, t, s)
		})
		t.Run("ProgressNotify", func(t *testing.T) {
			ctx, s, client := newStore(t, progressNotifyServer)
			storagetesting.RunOptionalTestProgressNotify(ctx, t, s, increaseRVFunc(client.Client))
		})
		t.Run("WatchWithUnsafeDelete", func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
			ctx, s, _ := newStore(t)
			storagetesting.RunTestWatchWithUnsafeDelete(ctx, t, s, corruptObjectError())
		})
		t.Run("WatchDispatchBookmarkEvents", func(t *testing.T) {
			ctx, s, _ := newStore(t, progressNotifyServer)
			storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, false)
		})
		t.Run("SendInitialEventsBackwardCompatibility", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, s)
		})
		t.Run("WatchSemantics", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunWatchSemantics(ctx, t, s)
		})
		t.Run("WatchSemanticsWithConcurrentDecode", func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.ConcurrentWatchObjectDecode, true)
			ctx, s, _ := newStore(t)
			storagetesting.RunWatchSemantics(ctx, t, s)
		})
		t.Run("WatchSemanticInitialEventsExtended", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunWatchSemanticInitialEventsExtended(ctx, t, s)
		})
		t.Run("WatchListMatchSingle", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunWatchListMatchSingle(ctx, t, s)
		})
		t.Run("WatchErrorEventIsBlockingFurtherEvent", func(t *testing.T) {
			ctx, s, _ := newStore(t)
			storagetesting.RunWatchErrorIsBlockingFurtherEvents(ctx, t, s)
		})
	})
}

// TestStoreTooLargeResourceVersionErrorForWatchList is k8s'
// TestTooLargeResourceVersionErrorForWatchList through the store's public
// Watch (k8s calls the unexported watcher directly, on key "/abc/", which
// the public Watch rejects for lacking the "/pods/" prefix): a watch-list from a revision the server has not reached ends
// with a TooLargeResourceVersion error that carries a retry delay.
func TestStoreTooLargeResourceVersionErrorForWatchList(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.WatchList, true)
		origCtx, s, _ := newStore(t)
		ctx, cancel := context.WithCancel(origCtx)
		defer cancel()
		requestOpts := storage.ListOptions{
			ResourceVersion:   "102",
			SendInitialEvents: ptr.To(true),
			Recursive:         true,
			Predicate: storage.SelectionPredicate{
				Field:               fields.Everything(),
				Label:               labels.Everything(),
				AllowWatchBookmarks: true,
			},
		}
		var expectedErr *apierrors.StatusError
		if !errors.As(storage.NewTooLargeResourceVersionError(uint64(102), 1, 0), &expectedErr) {
			t.Fatalf("Unable to convert NewTooLargeResourceVersionError to apierrors.StatusError")
		}
		w, err := s.Watch(ctx, "/pods/", requestOpts)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		actualEvent := <-w.ResultChan()
		if actualEvent.Type != watch.Error {
			t.Fatalf("Unexpected type of the event: %v, expected: %v", actualEvent.Type, watch.Error)
		}
		actualErr, ok := actualEvent.Object.(*metav1.Status)
		if !ok {
			t.Fatalf("Expected *apierrors.StatusError, got: %#v", actualEvent.Object)
		}
		if actualErr.Details.RetryAfterSeconds <= 0 {
			t.Fatalf("RetryAfterSeconds must be > 0, actual value: %v", actualErr.Details.RetryAfterSeconds)
		}
		// Details carry the retry delay; compare the rest (a fresh server
		// is at revision 1, as k8s' embedded etcd is).
		expectedErr.ErrStatus.Details = actualErr.Details
		if diff := cmp.Diff(*actualErr, expectedErr.ErrStatus); diff != "" {
			t.Fatalf("Unexpected error returned, diff: %v", diff)
		}
	})
}

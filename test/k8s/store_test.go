package k8s

// The conformance functions k8s.io/apiserver/pkg/storage/etcd3/store_test.go
// runs against its etcd3 storage, run here against an external server. Each
// test starts its own server, as k8s' tests start their own embedded etcd.
//
// Every test runs twice: with the EtcdRangeStream feature gate on (lists
// use KV.RangeStream, k8s' default since 1.37) and off (lists page with
// KV.Range, what every earlier Kubernetes does). k8s itself toggles the gate
// only for TestList and TestConsistentList.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
)

// rangeStreamModes runs f with the EtcdRangeStream gate on and off, each
// with a fresh feature checker. With the gate on it also fails the test if
// the store fell back to paginated lists (see
// requireRangeStreamStillSupported).
func rangeStreamModes(t *testing.T, f func(t *testing.T)) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("RangeStream=%v", on), func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.EtcdRangeStream, on)
			resetFeatureSupportChecker(t)
			f(t)
			if on {
				requireRangeStreamStillSupported(t)
			}
		})
	}
}

func TestStoreCreate(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		storagetesting.RunTestCreate(ctx, t, s, checkStorageInvariants(client.Client, s.codec))
	})
}

func TestStoreCreateWithTTL(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestCreateWithTTL(ctx, t, s)
	})
}

func TestStoreCreateWithKeyExist(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestCreateWithKeyExist(ctx, t, s)
	})
}

func TestStoreGet(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGet(ctx, t, s)
	})
}

func TestStoreUnconditionalDelete(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestUnconditionalDelete(ctx, t, s)
	})
}

func TestStoreConditionalDelete(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestConditionalDelete(ctx, t, s)
	})
}

func TestStoreDeleteWithSuggestion(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestDeleteWithSuggestion(ctx, t, s)
	})
}

func TestStoreDeleteWithSuggestionAndConflict(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, s)
	})
}

func TestStoreDeleteWithSuggestionOfDeletedObject(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, s)
	})
}

func TestStoreValidateDeletionWithSuggestion(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, s)
	})
}

func TestStoreValidateDeletionWithOnlySuggestionValid(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, s)
	})
}

func TestStoreDeleteWithConflict(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestDeleteWithConflict(ctx, t, s)
	})
}

// failingTransformer fails TransformFromStorage while fail is set (k8s'
// testTransformer).
type failingTransformer struct {
	value.Transformer
	fail atomic.Bool
}

func (ft *failingTransformer) setFailing(c bool) { ft.fail.Store(c) }

func (ft *failingTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	if ft.fail.Load() {
		return nil, false, errors.New("synthetic error")
	}
	return ft.Transformer.TransformFromStorage(ctx, data, dataCtx)
}

// failingCodec fails Decode while fail is set (k8s' testCodec).
type failingCodec struct {
	runtime.Codec
	fail atomic.Bool
}

func (fc *failingCodec) setFailing(c bool) { fc.fail.Store(c) }

func (fc *failingCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if fc.fail.Load() {
		return nil, nil, errors.New("synthetic error")
	}
	return fc.Codec.Decode(data, defaults, into)
}

func TestStoreDeleteWithConflictAndMissingExpectedTransformOrDecodeError(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
		codec := &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
		ctx, s, _ := newStore(t, withCodec(codec))
		storagetesting.RunTestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(ctx, t, s, codec.setFailing)
	})
}

func TestStoreDeleteWithConflictAndExpectedTransformError(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
		tr := &failingTransformer{Transformer: storagetesting.NewPrefixTransformer([]byte(defaultTestPrefix), false)}
		ctx, s, _ := newStore(t, withTransformer(tr))
		storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, s, tr.setFailing)
	})
}

func TestStoreDeleteWithConflictAndExpectedDecodeError(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
		codec := &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
		ctx, s, _ := newStore(t, withCodec(codec))
		storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, s, codec.setFailing)
	})
}

func TestStoreDeleteWithSuggestionAndMissingExpectedTransformOrDecodeFailure(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
		ctx, s, _ := newStore(t)
		storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(ctx, t, s)
	})
}

func TestStorePreconditionalDeleteWithSuggestion(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, s)
	})
}

func TestStorePreconditionalDeleteWithSuggestionPass(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, s)
	})
}

func TestStoreListPaging(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestListPaging(ctx, t, s)
	})
}

func TestStoreGetListNonRecursive(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		storagetesting.RunTestGetListNonRecursive(ctx, t, increaseRVFunc(client.Client), s)
	})
}

func TestStoreGetListRecursivePrefix(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGetListRecursivePrefix(ctx, t, s)
	})
}

func TestStoreKeySchema(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestKeySchema(ctx, t, s)
	})
}

// corruptObjectError returns the error etcd3's corrupt-object handling
// wraps a transformer failure in (k8s' tests build the unexported type
// directly; this gets the same value through the exported wrapper).
func corruptObjectError() error {
	tr := etcd3.WithCorruptObjErrorHandlingTransformer(errTransformer{errors.New("bits flipped")})
	_, _, err := tr.TransformFromStorage(context.Background(), nil, value.DefaultContext(nil))
	return err
}

// errTransformer fails every TransformFromStorage with err.
type errTransformer struct{ err error }

func (e errTransformer) TransformFromStorage(context.Context, []byte, value.Context) ([]byte, bool, error) {
	return nil, false, e.err
}

func (e errTransformer) TransformToStorage(context.Context, []byte, value.Context) ([]byte, error) {
	return nil, e.err
}

func TestStoreGetListWithErrorAggregation(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
		ctx, s, _ := newStore(t)
		unsafe := etcd3.NewStoreWithUnsafeCorruptObjectDeletion(s.Interface, schema.GroupResource{Resource: "pods"})
		storagetesting.RunTestGetListWithErrorAggregation(ctx, t, &transformerOverride{Interface: unsafe, s: s}, corruptObjectError())
	})
}

func TestStoreGetListWithoutErrorAggregation(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, false)
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGetListWithoutErrorAggregation(ctx, t, s, corruptObjectError())
	})
}

// transformerOverride is k8s' storeWithTransformerOverride around a wrapped
// store (the unsafe-deletion decorator).
type transformerOverride struct {
	storage.Interface
	s *store
}

func (o *transformerOverride) UpdateTransformer(modifier storagetesting.TransformerModifier) func() {
	return o.s.UpdateTransformer(modifier)
}

func TestStoreGuaranteedUpdate(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		storagetesting.RunTestGuaranteedUpdate(ctx, t, s, checkStorageInvariants(client.Client, s.codec))
	})
}

func TestStoreGuaranteedUpdateWithTTL(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, s)
	})
}

func TestStoreGuaranteedUpdateChecksStoredData(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGuaranteedUpdateChecksStoredData(ctx, t, s)
	})
}

func TestStoreGuaranteedUpdateWithConflict(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, s)
	})
}

func TestStoreGuaranteedUpdateWithSuggestionAndConflict(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, s)
	})
}

func TestStoreTransformationFailure(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestTransformationFailure(ctx, t, s)
	})
}

func TestStoreList(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		kvRecorder := client.KV.(*storagetesting.KVRecorder)
		storagetesting.RunTestList(ctx, t, s, compactStorage(s, client.Client), false, client.Kubernetes.(*storagetesting.KubernetesRecorder))
		streamReads := kvRecorder.GetStreamReadsAndReset()
		rangeStream := utilfeature.DefaultFeatureGate.Enabled(features.EtcdRangeStream)
		if rangeStream && streamReads == 0 {
			t.Error("expected lists to be served by RangeStream")
		}
		if !rangeStream && streamReads > 0 {
			t.Errorf("expected no RangeStream requests with the feature disabled, got %d", streamReads)
		}
	})
}

func TestStoreConsistentList(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		storagetesting.RunTestConsistentList(ctx, t, s, increaseRVFunc(client.Client), false, true, false)
	})
}

func TestStoreCompactRevision(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		// The store observes compactions by others through a watch on
		// compact_rev_key, which ListFromCacheSnapshot turns on.
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.ListFromCacheSnapshot, true)
		ctx, s, client := newStore(t)
		storagetesting.RunTestCompactRevision(ctx, t, s, increaseRVFunc(client.Client), compactStorage(s, client.Client))
	})
}

func TestStoreListContinuation(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		validation := checkStorageCallsInvariants(s.prefixTransformer, client.KV.(*storagetesting.KVRecorder))
		storagetesting.RunTestListContinuation(ctx, t, s, validation)
	})
}

func TestStoreListPaginationRareObject(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		// ListFromCacheSnapshot adds a Get of the compact key that the call
		// counting does not expect.
		featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.ListFromCacheSnapshot, false)
		ctx, s, client := newStore(t)
		validation := checkStorageCallsInvariants(s.prefixTransformer, client.KV.(*storagetesting.KVRecorder))
		storagetesting.RunTestListPaginationRareObject(ctx, t, s, validation)
	})
}

func TestStoreListContinuationWithFilter(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		validation := checkStorageCallsInvariants(s.prefixTransformer, client.KV.(*storagetesting.KVRecorder))
		storagetesting.RunTestListContinuationWithFilter(ctx, t, s, validation)
	})
}

func TestStoreNamespaceScopedList(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestNamespaceScopedList(ctx, t, s)
	})
}

func TestStoreListInconsistentContinuation(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		storagetesting.RunTestListInconsistentContinuation(ctx, t, s, compactStorage(s, client.Client))
	})
}

func TestStoreListResourceVersionMatch(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, _ := newStore(t)
		storagetesting.RunTestListResourceVersionMatch(ctx, t, s)
	})
}

func TestStoreStats(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		for _, sizeBased := range []bool{true, false} {
			t.Run(fmt.Sprintf("SizeBasedListCostEstimate=%v", sizeBased), func(t *testing.T) {
				ctx, s, _ := newStore(t)
				if sizeBased {
					if err := s.etcd3.EnableResourceSizeEstimation(s.getKeys); err != nil {
						t.Fatal(err)
					}
				}
				storagetesting.RunTestStats(ctx, t, s, s.codec, s.transformer, sizeBased)
			})
		}
	})
}

// The tests below are k8s' implementation-specific etcd3 tests that depend
// on server behaviour and reach only exported API.

// TestStoreLinearizedReadRevisionInvariant is k8s'
// TestLinearizedReadRevisionInvariant: linearizable reads do not bump the
// revision a later list reports.
func TestStoreLinearizedReadRevisionInvariant(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		dir := "/pods/"
		key := dir + "/testkey"
		out := &example.Pod{}
		obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: "foo", SelfLink: "testlink"}}
		if err := s.Create(ctx, key, obj, out, 0); err != nil {
			t.Fatalf("Set failed: %v", err)
		}
		originalRevision := out.ResourceVersion
		for i := 0; i < 5; i++ {
			if _, err := client.KV.Get(ctx, key); err != nil {
				t.Fatalf("failed to get key: %v", err)
			}
		}
		list := &example.PodList{}
		if err := s.GetList(ctx, dir, storage.ListOptions{Predicate: storage.Everything, Recursive: true}, list); err != nil {
			t.Errorf("Unexpected List error: %v", err)
		}
		if originalRevision != list.ResourceVersion {
			t.Fatalf("original revision (%s) did not match final revision after linearized reads (%s)", originalRevision, list.ResourceVersion)
		}
	})
}

// TestStoreGetCurrentResourceVersion is k8s' TestGetCurrentResourceVersion:
// the store's current RV is the server's header revision.
func TestStoreGetCurrentResourceVersion(t *testing.T) {
	rangeStreamModes(t, func(t *testing.T) {
		ctx, s, client := newStore(t)
		versioner := storage.APIObjectVersioner{}
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod-1"}}
		created := &example.Pod{}
		if err := s.Create(ctx, "/pods/ns/pod-1", pod, created, 0); err != nil {
			t.Fatal(err)
		}
		current, err := s.etcd3.GetCurrentResourceVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		podRV, err := versioner.ParseResourceVersion(created.ResourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		if current != podRV {
			t.Fatalf("GetCurrentResourceVersion()=%d, want the pod's RV %d", current, podRV)
		}
		resp, err := client.KV.Put(ctx, "compact_rev_key", created.ResourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		current, err = s.etcd3.GetCurrentResourceVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if current != uint64(resp.Header.Revision) {
			t.Fatalf("GetCurrentResourceVersion()=%d after an unrelated write, want its revision %d", current, resp.Header.Revision)
		}
		got := &example.Pod{}
		if err := s.Get(ctx, "/pods/ns/pod-1", storage.GetOptions{}, got); err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion != created.ResourceVersion {
			t.Fatalf("pod RV changed from %s to %s", created.ResourceVersion, got.ResourceVersion)
		}
	})
}

// TestStoreGetListStreamMultiChunk is k8s' TestGetListStreamMultiChunk:
// streamed lists longer than one RangeStream chunk (etcd chunks at 10 keys),
// at the current revision, pinned exactly, and not-older-than.
func TestStoreGetListStreamMultiChunk(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.EtcdRangeStream, true)
	resetFeatureSupportChecker(t)
	ctx, s, client := newStore(t)
	kvRecorder := client.KV.(*storagetesting.KVRecorder)

	const podCount = 25
	for i := range podCount {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("pod-%02d", i)}}
		if err := s.Create(ctx, fmt.Sprintf("/pods/ns/pod-%02d", i), pod, &example.Pod{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	streamedList := func(t *testing.T, rv string, rvMatch metav1.ResourceVersionMatch) *example.PodList {
		t.Helper()
		out := &example.PodList{}
		opts := storage.ListOptions{ResourceVersion: rv, ResourceVersionMatch: rvMatch, Predicate: storage.Everything, Recursive: true}
		if err := s.GetList(ctx, "/pods/", opts, out); err != nil {
			t.Fatalf("GetList failed: %v", err)
		}
		if streams := kvRecorder.GetStreamReadsAndReset(); streams == 0 {
			t.Error("expected the list to be served by RangeStream")
		}
		if out.Continue != "" || out.RemainingItemCount != nil {
			t.Errorf("streamed list must not paginate, got continue %q, remainingItemCount %v", out.Continue, out.RemainingItemCount)
		}
		return out
	}
	snapshot := streamedList(t, "", "")
	if len(snapshot.Items) != podCount {
		t.Errorf("consistent list returned %d items, want %d", len(snapshot.Items), podCount)
	}
	extraPod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod-extra"}}
	if err := s.Create(ctx, "/pods/ns/pod-extra", extraPod, &example.Pod{}, 0); err != nil {
		t.Fatal(err)
	}
	exact := streamedList(t, snapshot.ResourceVersion, metav1.ResourceVersionMatchExact)
	if len(exact.Items) != podCount {
		t.Errorf("exact list returned %d items, want %d", len(exact.Items), podCount)
	}
	if exact.ResourceVersion != snapshot.ResourceVersion {
		t.Errorf("exact list returned resourceVersion %s, want %s", exact.ResourceVersion, snapshot.ResourceVersion)
	}
	notOlder := streamedList(t, snapshot.ResourceVersion, "")
	if len(notOlder.Items) != podCount+1 {
		t.Errorf("notOlderThan list returned %d items, want %d", len(notOlder.Items), podCount+1)
	}
	requireRangeStreamStillSupported(t)
}

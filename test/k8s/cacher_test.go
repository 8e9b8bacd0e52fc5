package k8s

// The conformance functions k8s.io/apiserver/pkg/storage/cacher/
// cacher_test.go runs against the watch cache (Cacher behind a
// CacheDelegator, over the etcd3 storage), against an external server. Gates
// are k8s' defaults (RangeStream on) except where k8s' own test sets them.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/kubernetes"

	"k8s.io/apimachinery/pkg/api/apitesting"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/tools/cache"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/utils/clock"
)

// The cacher tests' scheme and codec (k8s' cacher_testing_utils_test.go):
// the example group, stored as protobuf.
var (
	cacherScheme        = runtime.NewScheme()
	cacherCodecs        = serializer.NewCodecFactory(cacherScheme)
	examplev1ProtoCodec runtime.Codec
)

func init() {
	metav1.AddToGroupVersion(cacherScheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(cacherScheme))
	utilruntime.Must(examplev1.AddToScheme(cacherScheme))
	utilruntime.Must(metav1.AddMetaToScheme(cacherScheme))
	pb := protobuf.NewSerializer(cacherScheme, cacherScheme)
	examplev1ProtoCodec = cacherCodecs.CodecForVersions(pb, pb, schema.GroupVersions{examplev1.SchemeGroupVersion}, nil)
}

// cacherPathPrefix is etcd3testing.PathPrefix() with ETCD_PREFIX unset.
const cacherPathPrefix = "/registry"

// getPodAttrs returns labels and fields of a Pod for filtering (k8s'
// GetPodAttrs in cacher_test.go).
func getPodAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	pod, ok := obj.(*example.Pod)
	if !ok {
		return nil, nil, fmt.Errorf("not a pod")
	}
	return labels.Set(pod.Labels), fields.Set{
		"spec.nodeName":      pod.Spec.NodeName,
		"spec.restartPolicy": string(pod.Spec.RestartPolicy),
		"status.phase":       string(pod.Status.Phase),
		"metadata.name":      pod.Name,
		"metadata.namespace": pod.Namespace,
	}, nil
}

// compactorPollPeriod is the cacher compactor's (unexported) period for
// reading the storage's compacted revision.
const compactorPollPeriod = 15 * time.Second

// compactorPollShort replaces compactorPollPeriod in tests.
const compactorPollShort = 50 * time.Millisecond

// fastCompactorClock is the real clock, except that timers of exactly
// compactorPollPeriod run for compactorPollShort. k8s' compactStore calls
// the cacher compactor's unexported compactIfNeeded right after a
// compaction; from outside the package the nearest equivalent is making the
// compactor poll often. Nothing else in the cacher uses a 15s timer.
//
// polls counts the compactor's poll timers armed: one each time it has
// finished a poll and waits for the next.
type fastCompactorClock struct {
	clock.RealClock
	polls *atomic.Int64
}

func (c fastCompactorClock) NewTimer(d time.Duration) clock.Timer {
	if d == compactorPollPeriod {
		c.polls.Add(1)
	}
	return &fastTimer{t: time.NewTimer(shorten(d)), polls: c.polls}
}

func shorten(d time.Duration) time.Duration {
	if d == compactorPollPeriod {
		return compactorPollShort
	}
	return d
}

type fastTimer struct {
	t     *time.Timer
	polls *atomic.Int64
}

func (f *fastTimer) C() <-chan time.Time { return f.t.C }
func (f *fastTimer) Stop() bool          { return f.t.Stop() }
func (f *fastTimer) Reset(d time.Duration) bool {
	if d == compactorPollPeriod {
		f.polls.Add(1)
	}
	return f.t.Reset(shorten(d))
}

type cacherOptions struct {
	resourcePrefix string
	keyFunc        func(runtime.Object) (string, error)
	indexerFuncs   map[string]storage.IndexerFunc
	indexers       cache.Indexers
	codec          runtime.Codec
	transformer    value.Transformer
}

type cacherOption func(*cacherOptions)

func withClusterScopedKeyFunc(o *cacherOptions) {
	o.keyFunc = func(obj runtime.Object) (string, error) {
		return storage.NoNamespaceKeyFunc(o.resourcePrefix, obj)
	}
}

// withNodeNameAndNamespaceIndex mirrors the indexers of
// pkg/registry/core/pod/strategy.go, as k8s' test does.
func withNodeNameAndNamespaceIndex(o *cacherOptions) {
	o.indexerFuncs = map[string]storage.IndexerFunc{
		"spec.nodeName": func(obj runtime.Object) string {
			pod, ok := obj.(*example.Pod)
			if !ok {
				return ""
			}
			return pod.Spec.NodeName
		},
	}
	o.indexers = map[string]cache.IndexFunc{
		"f:spec.nodeName": func(obj interface{}) ([]string, error) {
			return []string{obj.(*example.Pod).Spec.NodeName}, nil
		},
		"f:metadata.namespace": func(obj interface{}) ([]string, error) {
			return []string{obj.(*example.Pod).Namespace}, nil
		},
	}
}

func withCacherCodec(codec runtime.Codec) cacherOption {
	return func(o *cacherOptions) { o.codec = codec }
}

func withCacherTransformer(tr value.Transformer) cacherOption {
	return func(o *cacherOptions) { o.transformer = tr }
}

// cacherSetup is what a cacher test gets: the delegator (the
// storage.Interface under test), the etcd3 storage below it and the
// client.
type cacherSetup struct {
	polls     *atomic.Int64 // the cacher compactor's polls so far
	delegator *cacher.CacheDelegator
	storage   storage.Interface
	client    *kubernetes.Client
}

// newCacher is k8s' cacher testSetupWithEtcdServer against a fresh external
// server: etcd3 storage under /registry, one injected list error to
// exercise the relist, a cacher that has finished its initial list.
func newCacher(t *testing.T, opts ...cacherOption) (context.Context, *cacherSetup) {
	t.Helper()
	resetFeatureSupportChecker(t)
	o := cacherOptions{
		resourcePrefix: "/pods/",
		codec:          examplev1ProtoCodec,
		transformer:    identity.NewEncryptCheckTransformer(),
	}
	o.keyFunc = func(obj runtime.Object) (string, error) { return storage.NamespaceKeyFunc(o.resourcePrefix, obj) }
	for _, opt := range opts {
		opt(&o)
	}

	client := runServer(t, serverOptions{})
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(client.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	etcdStorage, err := etcd3.New(client, compactor, o.codec, newPod, newPodList, cacherPathPrefix, "/pods/",
		schema.GroupResource{Resource: "pods"}, o.transformer, etcd3.NewDefaultLeaseManagerConfig(),
		etcd3.NewDefaultDecoder(o.codec, versioner), versioner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcdStorage.Close)

	listErrors := 1
	if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		// The reflector watches instead of listing: no list to fail.
		listErrors = 0
	}
	wrapped := &storagetesting.StorageInjectingListErrors{Interface: etcdStorage, Errors: listErrors}
	polls := new(atomic.Int64)
	c, err := cacher.NewCacherFromConfig(cacher.Config{
		Storage:             wrapped,
		Versioner:           storage.APIObjectVersioner{},
		GroupResource:       schema.GroupResource{Resource: "pods"},
		EventsHistoryWindow: cacher.DefaultEventFreshDuration,
		ResourcePrefix:      o.resourcePrefix,
		KeyFunc:             o.keyFunc,
		GetAttrsFunc:        getPodAttrs,
		NewFunc:             newPod,
		NewListFunc:         newPodList,
		IndexerFuncs:        o.indexerFuncs,
		Indexers:            &o.indexers,
		Codec:               o.codec,
		Clock:               fastCompactorClock{polls: polls},
	})
	if err != nil {
		t.Fatalf("Failed to initialize cacher: %v", err)
	}
	ctx := context.Background()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return wrapped.ErrorsConsumed()
	}); err != nil {
		t.Fatalf("Failed to inject list errors: %v", err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	d := cacher.NewCacheDelegator(c, wrapped)
	t.Cleanup(func() {
		d.Stop()
		c.Stop()
	})
	t.Cleanup(func() {
		if utilfeature.DefaultFeatureGate.Enabled(features.EtcdRangeStream) {
			requireRangeStreamStillSupported(t)
		}
	})
	return ctx, &cacherSetup{polls: polls, delegator: d, storage: wrapped, client: client}
}

// compactCacherStore is k8s' cacher compactStore: compact through the
// apiserver's protocol, wait until the storage has observed it, then (k8s
// calls compactIfNeeded here) give the cacher compactor a few of its
// shortened polls to drop its snapshots up to the revision.
func compactCacherStore(cs *cacherSetup) storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		versioner := storage.APIObjectVersioner{}
		rv, err := versioner.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		var currentVersion int64
		currentVersion, _, _, err = etcd3.Compact(ctx, cs.client.Client, currentVersion, int64(rv))
		if err != nil {
			_, _, _, err = etcd3.Compact(ctx, cs.client.Client, currentVersion, int64(rv))
		}
		if err != nil {
			t.Fatal(err)
		}
		if utilfeature.DefaultFeatureGate.Enabled(features.ListFromCacheSnapshot) {
			waitCompactRevision(ctx, t, cs.storage, int64(rv))
			// Two full polls after the storage saw the compaction: the
			// compactor has read the revision and dropped its snapshots.
			waitPolls(t, cs.polls, cs.polls.Load()+2)
		}
	}
}

func cacherIncreaseRV(cs *cacherSetup) storagetesting.IncreaseRVFunc {
	return increaseRVFunc(cs.client.Client)
}

// noStorageInvariants and noCallsValidation are k8s' cacher no-ops: the
// cacher passes creation and pagination to the storage below.
func noStorageInvariants(context.Context, *testing.T, string) {}
func noCallsValidation(*testing.T, uint64, uint64)            {}

func TestCacherCreate(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestCreate(ctx, t, cs.delegator, noStorageInvariants)
}

func TestCacherCreateWithTTL(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestCreateWithTTL(ctx, t, cs.delegator)
}

func TestCacherCreateWithKeyExist(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestCreateWithKeyExist(ctx, t, cs.delegator)
}

func TestCacherGet(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestGet(ctx, t, cs.delegator)
}

func TestCacherUnconditionalDelete(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestUnconditionalDelete(ctx, t, cs.delegator)
}

func TestCacherConditionalDelete(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestConditionalDelete(ctx, t, cs.delegator)
}

func TestCacherDeleteWithSuggestion(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestDeleteWithSuggestion(ctx, t, cs.delegator)
}

func TestCacherDeleteWithSuggestionAndConflict(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, cs.delegator)
}

func TestCacherDeleteWithSuggestionOfDeletedObject(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, cs.delegator)
}

func TestCacherValidateDeletionWithSuggestion(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, cs.delegator)
}

func TestCacherValidateDeletionWithOnlySuggestionValid(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, cs.delegator)
}

func TestCacherDeleteWithConflict(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestDeleteWithConflict(ctx, t, cs.delegator)
}

// cacherFailingTransformer fails TransformFromStorage while fail is set.
type cacherFailingTransformer struct {
	value.Transformer
	fail atomic.Bool
}

func (ft *cacherFailingTransformer) setFailing(c bool) { ft.fail.Store(c) }

func (ft *cacherFailingTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	if ft.fail.Load() {
		return nil, false, fmt.Errorf("synthetic error")
	}
	return ft.Transformer.TransformFromStorage(ctx, data, dataCtx)
}

func TestCacherDeleteWithConflictAndMissingExpectedTransformOrDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	tr := &cacherFailingTransformer{Transformer: identity.NewEncryptCheckTransformer()}
	ctx, cs := newCacher(t, withCacherTransformer(tr))
	storagetesting.RunTestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(ctx, t, cs.delegator, tr.setFailing)
}

func TestCacherDeleteWithConflictAndExpectedTransformError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	tr := &cacherFailingTransformer{Transformer: identity.NewEncryptCheckTransformer()}
	ctx, cs := newCacher(t, withCacherTransformer(tr))
	storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, cs.delegator, tr.setFailing)
}

func TestCacherDeleteWithConflictAndExpectedDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	// The stored bytes deliberately fail to decode.
	etcd3.TestOnlySetFatalOnDecodeError(t, false)
	codec := &failingCodec{Codec: apitesting.TestCodec(cacherCodecs, examplev1.SchemeGroupVersion)}
	ctx, cs := newCacher(t, withCacherCodec(codec))
	storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, cs.delegator, codec.setFailing)
}

func TestCacherDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	ctx, cs := newCacher(t)
	storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(ctx, t, cs.delegator)
}

func TestCacherPreconditionalDeleteWithSuggestion(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, cs.delegator)
}

func TestCacherPreconditionalDeleteWithSuggestionPass(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, cs.delegator)
}

func TestCacherListPaging(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestListPaging(ctx, t, cs.delegator)
}

func TestCacherLists(t *testing.T) {
	for _, listFromCacheSnapshot := range []bool{true, false} {
		t.Run(fmt.Sprintf("ListFromCacheSnapshot=%v", listFromCacheSnapshot), func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.ListFromCacheSnapshot, listFromCacheSnapshot)
			// k8s runs these three in parallel; on two cores they share
			// the machine with three servers, so they run one by one here.
			t.Run("List", func(t *testing.T) {
				ctx, cs := newCacher(t)
				storagetesting.RunTestList(ctx, t, cs.delegator, compactCacherStore(cs), true, cs.client.Kubernetes.(*storagetesting.KubernetesRecorder))
			})
			t.Run("ConsistentList", func(t *testing.T) {
				ctx, cs := newCacher(t)
				storagetesting.RunTestConsistentList(ctx, t, cs.delegator, cacherIncreaseRV(cs), true, true, listFromCacheSnapshot)
			})
			t.Run("GetListNonRecursive", func(t *testing.T) {
				ctx, cs := newCacher(t)
				storagetesting.RunTestGetListNonRecursive(ctx, t, cacherIncreaseRV(cs), cs.delegator)
			})
		})
	}
}

func TestCacherCompactRevision(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.ListFromCacheSnapshot, true)
	ctx, cs := newCacher(t)
	storagetesting.RunTestCompactRevision(ctx, t, cs.delegator, cacherIncreaseRV(cs), compactCacherStore(cs))
}

func TestCacherGetListRecursivePrefix(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestGetListRecursivePrefix(ctx, t, cs.delegator)
}

func TestCacherListContinuation(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestListContinuation(ctx, t, cs.delegator, noCallsValidation)
}

func TestCacherListPaginationRareObject(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestListPaginationRareObject(ctx, t, cs.delegator, noCallsValidation)
}

func TestCacherListContinuationWithFilter(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestListContinuationWithFilter(ctx, t, cs.delegator, noCallsValidation)
}

func TestCacherNamespaceScopedList(t *testing.T) {
	ctx, cs := newCacher(t, withNodeNameAndNamespaceIndex)
	storagetesting.RunTestNamespaceScopedList(ctx, t, cs.delegator)
}

func TestCacherGuaranteedUpdateWithTTL(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, cs.delegator)
}

func TestCacherGuaranteedUpdateWithConflict(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, cs.delegator)
}

func TestCacherGuaranteedUpdateWithSuggestionAndConflict(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, cs.delegator)
}

func TestCacherStats(t *testing.T) {
	for _, sizeBased := range []bool{true, false} {
		t.Run(fmt.Sprintf("SizeBasedListCostEstimate=%v", sizeBased), func(t *testing.T) {
			featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.SizeBasedListCostEstimate, sizeBased)
			ctx, cs := newCacher(t)
			storagetesting.RunTestStats(ctx, t, cs.delegator, examplev1ProtoCodec, identity.NewEncryptCheckTransformer(), sizeBased)
		})
	}
}

func TestCacherKeySchema(t *testing.T) {
	ctx, cs := newCacher(t)
	storagetesting.RunTestKeySchema(ctx, t, cs.delegator)
}

// createWrapper is k8s' createWrapper: Create returns only once the watch
// cache serves the created object.
type createWrapper struct {
	*cacher.CacheDelegator
}

func (c *createWrapper) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	if err := c.CacheDelegator.Create(ctx, key, obj, out, ttl); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, wait.ForeverTestTimeout, true, func(ctx context.Context) (bool, error) {
		current := newPod()
		err := c.CacheDelegator.Get(ctx, key, storage.GetOptions{ResourceVersion: "0"}, current)
		if err != nil {
			if storage.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return apiequality.Semantic.DeepEqual(current, out), nil
	})
}

func TestCacherWatch(t *testing.T) {
	t.Run("Watch", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestWatch(ctx, t, cs.delegator)
	})
	t.Run("DeleteTriggerWatch", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestDeleteTriggerWatch(ctx, t, cs.delegator)
	})
	t.Run("WatchFromNonZero", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestWatchFromNonZero(ctx, t, cs.delegator)
	})
	t.Run("DelayedWatchDelivery", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestDelayedWatchDelivery(ctx, t, cs.delegator)
	})
	t.Run("WatcherTimeout", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestWatcherTimeout(ctx, t, cs.delegator)
	})
	t.Run("WatchDeleteEventObjectHaveLatestRV", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, cs.delegator)
	})
	t.Run("WatchInitializationSignal", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestWatchInitializationSignal(ctx, t, cs.delegator)
	})
	t.Run("ClusterScopedWatch", func(t *testing.T) {
		ctx, cs := newCacher(t, withClusterScopedKeyFunc, withNodeNameAndNamespaceIndex)
		storagetesting.RunTestClusterScopedWatch(ctx, t, cs.delegator)
	})
	t.Run("NamespaceScopedWatch", func(t *testing.T) {
		ctx, cs := newCacher(t, withNodeNameAndNamespaceIndex)
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, cs.delegator)
	})
	t.Run("WatchDispatchBookmarkEvents", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, cs.delegator, true)
	})
	t.Run("WatchBookmarksWithCorrectResourceVersion", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunTestOptionalWatchBookmarksWithCorrectResourceVersion(ctx, t, cs.delegator)
	})
	t.Run("SendInitialEventsBackwardCompatibility", func(t *testing.T) {
		ctx, cs := newCacher(t)
		storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, cs.delegator)
	})
	t.Run("WatchSemantics", func(t *testing.T) {
		_, cs := newCacher(t)
		storagetesting.RunWatchSemantics(context.TODO(), t, &createWrapper{cs.delegator})
	})
	t.Run("WatchSemanticInitialEventsExtended", func(t *testing.T) {
		_, cs := newCacher(t)
		storagetesting.RunWatchSemanticInitialEventsExtended(context.TODO(), t, &createWrapper{cs.delegator})
	})
	t.Run("WatchListMatchSingle", func(t *testing.T) {
		_, cs := newCacher(t)
		storagetesting.RunWatchListMatchSingle(context.TODO(), t, &createWrapper{cs.delegator})
	})
}

// waitPolls waits until the cacher compactor has polled want times.
func waitPolls(t *testing.T, polls *atomic.Int64, want int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); polls.Load() < want; {
		if time.Now().After(deadline) {
			t.Fatalf("the cacher compactor polled %d times, want %d", polls.Load(), want)
		}
		time.Sleep(5 * time.Millisecond) // the polling interval
	}
}

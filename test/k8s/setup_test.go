package k8s

import (
	"context"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"google.golang.org/grpc/grpclog"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/utils/clock"
)

// The scheme and codecs are those of k8s' etcd3 store_test.go: the example
// API group (Pod, PodList) in its internal and v1 versions.
var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

// defaultTestPrefix is the prefix k8s' PrefixTransformer puts on every value.
const defaultTestPrefix = "test!"

// maxLimit mirrors etcd3.maxLimit (unexported): the largest page the store
// asks etcd for when it grows page sizes.
const maxLimit = 10000

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))

	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
}

func newPod() runtime.Object     { return &example.Pod{} }
func newPodList() runtime.Object { return &example.PodList{} }

// swappableTransformer is the transformer every store is built with. k8s'
// tests replace store.transformer and store.watcher.transformer (unexported
// fields) to inject failures; from outside the package the same effect comes
// from swapping what this wrapper delegates to, since the store and its
// watcher share the one instance.
type swappableTransformer struct {
	mu    sync.RWMutex
	inner value.Transformer
}

func newSwappableTransformer(inner value.Transformer) *swappableTransformer {
	return &swappableTransformer{inner: inner}
}

func (s *swappableTransformer) get() value.Transformer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.inner
}

// swap installs next and returns a func that restores the previous one.
func (s *swappableTransformer) swap(next value.Transformer) (restore func()) {
	s.mu.Lock()
	prev := s.inner
	s.inner = next
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.inner = prev
		s.mu.Unlock()
	}
}

func (s *swappableTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	return s.get().TransformFromStorage(ctx, data, dataCtx)
}

func (s *swappableTransformer) TransformToStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, error) {
	return s.get().TransformToStorage(ctx, data, dataCtx)
}

// store is k8s' etcd3 storage (etcd3.New returns an unexported type, so
// only its exported methods are reachable) with what the tests need to
// reach around it.
type store struct {
	storage.Interface
	// etcd3 is the same object with its concrete method set.
	etcd3 etcd3Store

	client      *kubernetes.Client
	codec       runtime.Codec
	transformer *swappableTransformer
	// prefixTransformer is the PrefixTransformer the store was built with,
	// when it was (the default).
	prefixTransformer *storagetesting.PrefixTransformer
	pathPrefix        string
	resourcePrefix    string
}

// etcd3Store is the part of etcd3's store beyond storage.Interface that the
// tests use.
type etcd3Store interface {
	storage.Interface
	EnableResourceSizeEstimation(storage.KeysFunc) error
	GetCurrentResourceVersion(ctx context.Context) (uint64, error)
}

// UpdatePrefixTransformer implements storagetesting.InterfaceWithPrefixTransformer
// as k8s' storeWithPrefixTransformer does.
func (s *store) UpdatePrefixTransformer(modifier storagetesting.PrefixTransformerModifier) func() {
	copied := *s.prefixTransformer
	return s.transformer.swap(modifier(&copied))
}

// UpdateTransformer implements storagetesting.InterfaceWithTransformerOverride
// as k8s' storeWithTransformerOverride does.
func (s *store) UpdateTransformer(modifier storagetesting.TransformerModifier) func() {
	return s.transformer.swap(modifier(s.transformer.get()))
}

// getKeys is etcd3's store.getKeys (unexported): every key under the
// resource prefix, for the resource size estimator.
func (s *store) getKeys(ctx context.Context) ([]string, error) {
	resp, err := s.client.KV.Get(ctx, s.pathPrefix+s.resourcePrefix[1:], clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys, nil
}

type storeOptions struct {
	server         serverOptions
	codec          runtime.Codec
	prefix         string
	resourcePrefix string
	transformer    value.Transformer
	leaseConfig    etcd3.LeaseManagerConfig
}

type storeOption func(*storeOptions)

func withServerOptions(o serverOptions) storeOption {
	return func(opts *storeOptions) { opts.server = o }
}

func withCodec(codec runtime.Codec) storeOption {
	return func(opts *storeOptions) { opts.codec = codec }
}

func withTransformer(tr value.Transformer) storeOption {
	return func(opts *storeOptions) { opts.transformer = tr }
}

// newTestLeaseManagerConfig is k8s' test lease config: leases are reused for
// 1s, not the default 60s.
func newTestLeaseManagerConfig() etcd3.LeaseManagerConfig {
	cfg := etcd3.NewDefaultLeaseManagerConfig()
	cfg.ReuseDurationSeconds = 1
	return cfg
}

// newStore is k8s' etcd3 testSetup against a fresh external server.
func newStore(t *testing.T, opts ...storeOption) (context.Context, *store, *kubernetes.Client) {
	t.Helper()
	o := storeOptions{
		codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
		prefix:         "",
		resourcePrefix: "/pods/",
		transformer:    storagetesting.NewPrefixTransformer([]byte(defaultTestPrefix), false),
		leaseConfig:    newTestLeaseManagerConfig(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	client := runServer(t, o.server)
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(client.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	tr := newSwappableTransformer(o.transformer)
	s, err := etcd3.New(client, compactor, o.codec, newPod, newPodList, o.prefix, o.resourcePrefix,
		schema.GroupResource{Resource: "pods"}, tr, o.leaseConfig, etcd3.NewDefaultDecoder(o.codec, versioner), versioner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pt, _ := o.transformer.(*storagetesting.PrefixTransformer)
	return context.Background(), &store{
		Interface:         s,
		etcd3:             s,
		client:            client,
		codec:             o.codec,
		transformer:       tr,
		prefixTransformer: pt,
		pathPrefix:        storePathPrefix(o.prefix),
		resourcePrefix:    o.resourcePrefix,
	}, client
}

// storePathPrefix is how etcd3.New normalises its prefix argument.
func storePathPrefix(prefix string) string {
	p := path.Join("/", prefix)
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// checkStorageInvariants is k8s' etcd3 KeyValidation: the stored bytes carry
// the transformer prefix and decode to a Pod without resourceVersion.
func checkStorageInvariants(client *clientv3.Client, codec runtime.Codec) storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		getResp, err := client.KV.Get(ctx, key)
		if err != nil {
			t.Fatalf("etcdClient.KV.Get failed: %v", err)
		}
		if len(getResp.Kvs) == 0 {
			t.Fatalf("expecting non empty result on key: %s", key)
		}
		decoded, err := runtime.Decode(codec, getResp.Kvs[0].Value[len(defaultTestPrefix):])
		if err != nil {
			t.Fatalf("expecting successful decode of object from %v\n%v", err, string(getResp.Kvs[0].Value))
		}
		obj := decoded.(*example.Pod)
		if obj.ResourceVersion != "" {
			t.Errorf("stored object should have empty resource version")
		}
		if obj.SelfLink != "" {
			t.Errorf("stored output should have empty selfLink")
		}
	}
}

// checkStorageCallsInvariants is k8s' CallsValidation for the etcd3 store:
// how many objects were transformed and how many Get/GetStream calls the
// store made while paging.
func checkStorageCallsInvariants(transformer *storagetesting.PrefixTransformer, recorder *storagetesting.KVRecorder) storagetesting.CallsValidation {
	return func(t *testing.T, pageSize, estimatedProcessedObjects uint64) {
		if reads := transformer.GetReadsAndReset(); reads != estimatedProcessedObjects {
			t.Errorf("unexpected reads: %d, expected: %d", reads, estimatedProcessedObjects)
		}
		estimatedGetCalls := uint64(1)
		if pageSize != 0 {
			currLimit := pageSize
			for sum := uint64(1); sum < estimatedProcessedObjects; {
				currLimit *= 2
				if currLimit > maxLimit {
					currLimit = maxLimit
				}
				sum += currLimit
				estimatedGetCalls++
			}
		}
		if reads := recorder.GetReadsAndReset() + recorder.GetStreamReadsAndReset(); reads != estimatedGetCalls {
			t.Fatalf("unexpected reads: %d, want: %d", reads, estimatedGetCalls)
		}
	}
}

// compactStorage is k8s' etcd3 Compaction: compact through the store's own
// compaction protocol (etcd3.Compact on compact_rev_key) and, when
// ListFromCacheSnapshot is on, wait until the store has observed it.
func compactStorage(s storage.Interface, client *clientv3.Client) storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		versioner := storage.APIObjectVersioner{}
		rv, err := versioner.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		var currentVersion int64
		currentVersion, _, _, err = etcd3.Compact(ctx, client, currentVersion, int64(rv))
		if err != nil {
			_, _, _, err = etcd3.Compact(ctx, client, currentVersion, int64(rv))
		}
		if err != nil {
			t.Fatal(err)
		}
		if utilfeature.DefaultFeatureGate.Enabled(features.ListFromCacheSnapshot) {
			waitCompactRevision(ctx, t, s, int64(rv))
		}
	}
}

// waitCompactRevision waits until s reports rv as its compacted revision.
// k8s' version waits forever (bounded by the test timeout); this one gives
// up after 30s so a server that never delivers the compact_rev_key watch
// event fails with a message instead of a hang.
func waitCompactRevision(ctx context.Context, t *testing.T, s storage.Interface, rv int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		got := s.CompactRevision()
		if got == rv {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not observe compaction at revision %d within 30s (CompactRevision()=%d)", rv, got)
		}
	}
}

// increaseRVFunc is k8s' IncreaseRVFunc: a write outside the resource
// prefix.
func increaseRVFunc(client *clientv3.Client) storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		resp, err := client.KV.Put(ctx, "increaseRV", "ok")
		if err != nil {
			t.Fatalf("Could not update increaseRV: %v", err)
		}
		return resp.Header.Revision
	}
}

// resetFeatureSupportChecker gives t a fresh etcd feature checker, as k8s'
// resetFeatureSupportCheckerDuringTest does: a RangeStream marked
// unsupported by one test must not leak into the next.
func resetFeatureSupportChecker(t *testing.T) {
	t.Helper()
	orig := etcdfeature.DefaultFeatureSupportChecker
	etcdfeature.DefaultFeatureSupportChecker = etcdfeature.NewDefaultFeatureSupportChecker()
	t.Cleanup(func() { etcdfeature.DefaultFeatureSupportChecker = orig })
}

// requireRangeStreamStillSupported fails t if the store fell back from
// RangeStream to paginated lists during the test. The fallback is silent
// (the store marks RangeStream unsupported when the server answers
// Unimplemented), so without this check a server lacking RangeStream would
// pass every RangeStream=true case on the paginated path.
func requireRangeStreamStillSupported(t *testing.T) {
	t.Helper()
	if !etcdfeature.DefaultFeatureSupportChecker.Supports(storage.RangeStream) {
		t.Error("RangeStream was marked unsupported during the test: the server answered KV.RangeStream with Unimplemented and lists fell back to paginated Range")
	}
}

package llmgateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// states holds one gatewayState per storage path (or database URL), shared
// by every config (old and new during a reload) that names it: Badger can
// be opened only once per directory, and a database needs one pool.
var states = caddy.NewUsagePool()

// drainTimeout bounds how long closing a state waits for in-flight requests.
const drainTimeout = 15 * time.Second

// gatewayState is what outlives a config reload: the store and the caches in
// front of it. Its goroutines start in newGatewayState and stop in Destruct.
type gatewayState struct {
	store  gatewayStore
	health writeHealth
	cache  caches
	touch  *touchQueue
	meter  usageMeter
	work   inflight
	cancel context.CancelFunc
	done   chan struct{}
	// stopping ends when the state is being closed (the process stops):
	// upstream calls still running then are cut, billed and recorded
	// before the store closes.
	stopping context.Context
	stop     context.CancelFunc
}

func newGatewayState(opts storage.Options) (*gatewayState, error) {
	store, err := storage.Open(opts)
	if err != nil {
		return nil, err
	}
	return startGatewayState(store, newMemoryMeter(store)), nil
}

// startGatewayState puts an open store and its meter behind the caches and
// starts the state's goroutines: the key touch writer, and loops, each
// until Destruct.
func startGatewayState(store gatewayStore, meter usageMeter, loops ...func(context.Context, *gatewayState)) *gatewayState {
	ctx, cancel := context.WithCancel(context.Background())
	st := &gatewayState{
		store:  store,
		cache:  newCaches(),
		touch:  newTouchQueue(),
		meter:  meter,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	st.work.zero = make(chan struct{})
	st.stopping, st.stop = context.WithCancel(context.Background())
	loops = append(loops, func(ctx context.Context, st *gatewayState) { st.touch.run(ctx, store) })
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Go(func() { loop(ctx, st) })
	}
	go func() {
		wg.Wait()
		close(st.done)
	}()
	return st
}

// Destruct implements caddy.Destructor: it runs when the last config using
// this storage path (or database) is cleaned up. After a reload (to another storage
// path) the requests in flight may finish, for up to drainTimeout; at exit,
// Caddy has already waited its grace_period, so they are not waited for.
// The upstream calls still running then are cut (the client of a stream
// gets the stream error event) and recorded before the store closes: the
// exit would otherwise cut them unbilled.
func (st *gatewayState) Destruct() error {
	if caddy.Exiting() || !st.work.drain(drainTimeout) {
		st.stop()
		if !st.work.drain(drainTimeout) {
			caddy.Log().Named("llm_gateway").Warn("closing store with requests still in flight",
				zap.Duration("waited", drainTimeout))
		}
	}
	st.cancel()
	<-st.done
	if err := st.store.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	return nil
}

// inflight counts requests using the state, so it is not closed under them.
type inflight struct {
	mu      sync.Mutex
	n       int
	closing bool
	zero    chan struct{}
}

// acquire registers a request; false once the state is closing.
func (f *inflight) acquire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.n++
	return true
}

func (f *inflight) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.closing {
		close(f.zero)
	}
}

// drain refuses new work and waits for the current work to end.
func (f *inflight) drain(timeout time.Duration) bool {
	f.mu.Lock()
	if !f.closing {
		f.closing = true
		if f.n == 0 {
			close(f.zero)
		}
	}
	f.mu.Unlock()
	select {
	case <-f.zero:
		return true
	case <-time.After(timeout):
		return false
	}
}

// cache keeps objects that change only through admin writes (virtual
// keys by the SHA-256 of their secret, users, budgets, prices), so the
// request path does not touch the store for them. Every admin write
// invalidates every cache whole; the generation makes sure a lookup that
// raced an invalidation does not put a stale object back.
type cache[K comparable, V any] struct {
	mu      sync.RWMutex
	gen     uint64
	entries map[K]V
	max     int
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	return &cache[K, V]{entries: make(map[K]V), max: max}
}

// get returns the cached value, whether there was one, and the generation
// to pass to put after loading a missing value.
func (c *cache[K, V]) get(k K) (V, bool, uint64) {
	c.mu.RLock()
	v, ok := c.entries[k]
	gen := c.gen
	c.mu.RUnlock()
	return v, ok, gen
}

func (c *cache[K, V]) put(k K, v V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[k] = v
}

func (c *cache[K, V]) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// forget drops the entry of k. It moves the generation on, as invalidate
// does, so that a lookup of k that read the store before the change does
// not put the old value back (lookups of other keys racing it only miss
// their put, and load again next time).
func (c *cache[K, V]) forget(k K) {
	c.mu.Lock()
	c.gen++
	delete(c.entries, k)
	c.mu.Unlock()
}

// caches are the gateway's read caches, invalidated together.
type caches struct {
	keys    *cache[[sha256.Size]byte, *storage.APIKey]
	users   *cache[string, *storage.User]
	budgets *cache[string, *storage.Budget]
	prices  *cache[string, *storage.Price] // nil: no price
}

func newCaches() caches {
	return caches{
		keys:    newCache[[sha256.Size]byte, *storage.APIKey](100_000),
		users:   newCache[string, *storage.User](100_000),
		budgets: newCache[string, *storage.Budget](10_000),
		prices:  newCache[string, *storage.Price](10_000),
	}
}

func (c caches) invalidate() {
	c.keys.invalidate()
	c.users.invalidate()
	c.budgets.invalidate()
	c.prices.invalidate()
}

// touchInterval is how often at most a key's last_used_at is written.
const touchInterval = time.Minute

// touchQueue writes last_used_at in the background, at most once per
// touchInterval per key, so authentication never waits for a disk write.
type touchQueue struct {
	mu   sync.Mutex
	last map[string]time.Time
	ch   chan keyTouch
}

type keyTouch struct {
	id string
	at time.Time
}

func newTouchQueue() *touchQueue {
	return &touchQueue{last: make(map[string]time.Time), ch: make(chan keyTouch, 1024)}
}

// note records a use of key id at now, queueing a write if one is due.
func (q *touchQueue) note(id string, now time.Time) {
	q.mu.Lock()
	prev, seen := q.last[id]
	due := !seen || now.Sub(prev) >= touchInterval
	if due {
		q.last[id] = now
	}
	q.mu.Unlock()
	if !due {
		return
	}
	select {
	case q.ch <- keyTouch{id: id, at: now}:
	default: // the writer is behind; the next use a minute later retries
		q.mu.Lock()
		if q.last[id].Equal(now) {
			delete(q.last, id)
		}
		q.mu.Unlock()
	}
}

// lastUsed is the newest use noted for id, which may not be stored yet.
func (q *touchQueue) lastUsed(id string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.last[id]
	return t, ok
}

func (q *touchQueue) forget(id string) {
	q.mu.Lock()
	delete(q.last, id)
	q.mu.Unlock()
}

func (q *touchQueue) run(ctx context.Context, store gatewayStore) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-q.ch:
			if err := store.TouchKey(t.id, t.at); err != nil {
				caddy.Log().Named("llm_gateway").Warn("updating last_used_at",
					zap.String("key_id", t.id), zap.Error(err))
			}
		}
	}
}

// cached returns c's value for k, loading it on a miss. A value the store
// does not have is cached as nil and returned as nil, without an error.
func cached[K comparable, V any](c *cache[K, *V], k K, load func() (*V, error)) (*V, error) {
	v, ok, gen := c.get(k)
	if ok {
		return v, nil
	}
	v, err := load()
	if errors.Is(err, storage.ErrNotFound) {
		v, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.put(k, v, gen)
	return v, nil
}

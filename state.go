package llmgateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// states holds one gatewayState per storage path, shared by every config
// (old and new during a reload) that names that path: Badger can be opened
// only once per directory.
var states = caddy.NewUsagePool()

// drainTimeout bounds how long closing a state waits for in-flight requests.
const drainTimeout = 15 * time.Second

// gatewayState is what outlives a config reload: the store and the caches in
// front of it. Its goroutines start in newGatewayState and stop in Destruct.
type gatewayState struct {
	store  gatewayStore
	health writeHealth
	keys   *keyCache
	touch  *touchQueue
	ledger *ledger
	limits *rateLimiter
	work   inflight
	cancel context.CancelFunc
	done   chan struct{}
}

func newGatewayState(opts storage.Options) (*gatewayState, error) {
	store, err := storage.Open(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &gatewayState{
		store:  store,
		keys:   newKeyCache(100_000),
		touch:  newTouchQueue(),
		ledger: newLedger(store),
		limits: newRateLimiter(),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	st.work.zero = make(chan struct{})
	go func() {
		defer close(st.done)
		st.touch.run(ctx, store)
	}()
	return st, nil
}

// Destruct implements caddy.Destructor: it runs when the last config using
// this storage path is cleaned up. Requests still in flight (a reload does
// not wait for them) finish first, bounded by drainTimeout.
func (st *gatewayState) Destruct() error {
	if !st.work.drain(drainTimeout) {
		caddy.Log().Named("llm_gateway").Warn("closing store with requests still in flight",
			zap.Duration("waited", drainTimeout))
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
	f.closing = true
	if f.n == 0 {
		close(f.zero)
	}
	f.mu.Unlock()
	select {
	case <-f.zero:
		return true
	case <-time.After(timeout):
		return false
	}
}

// keyCache keeps recently used virtual keys by the SHA-256 of their secret,
// so authentication does not touch the store. Every admin write invalidates
// it whole; the generation makes sure a lookup that raced an invalidation
// does not put a stale key back.
type keyCache struct {
	mu      sync.RWMutex
	gen     uint64
	entries map[[sha256.Size]byte]*storage.APIKey
	max     int
}

func newKeyCache(max int) *keyCache {
	return &keyCache{entries: make(map[[sha256.Size]byte]*storage.APIKey), max: max}
}

// get returns the cached key (nil on a miss) and the generation to pass to put.
func (c *keyCache) get(hash [sha256.Size]byte) (*storage.APIKey, uint64) {
	c.mu.RLock()
	k, gen := c.entries[hash], c.gen
	c.mu.RUnlock()
	return k, gen
}

func (c *keyCache) put(hash [sha256.Size]byte, k *storage.APIKey, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[hash] = k
}

func (c *keyCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
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

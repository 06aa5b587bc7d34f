package llmgateway

import "testing"

func TestChangeWatch(t *testing.T) {
	t.Parallel()
	w := newChangeWatch("host/1/ab")
	if w.missed() {
		t.Fatal("missed before any heartbeat was sent")
	}
	first := w.next()
	if !w.missed() {
		t.Fatal("a heartbeat that has not come back yet is not reported missing")
	}
	w.heard("host/2/cd#1") // another instance's
	w.heard("host/1/ab#x") // malformed
	if !w.missed() {
		t.Fatal("another instance's heartbeat or a malformed one counted as ours")
	}
	w.heard(first)
	if w.missed() {
		t.Fatalf("heartbeat %s came back and is still missed", first)
	}
	second, third := w.next(), w.next()
	w.heard(third)
	w.heard(second) // late, out of order: the newer one already covers it
	if w.missed() {
		t.Fatal("the newest heartbeat came back and is still missed")
	}
	w.next() // sent, never comes back
	if !w.missed() {
		t.Fatal("a heartbeat that did not come back is not missed")
	}
}

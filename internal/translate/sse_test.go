package translate

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readPieces reads a whole stream and returns its pieces and the error
// that ended it.
func readPieces(r io.Reader) ([]string, error) {
	rd := NewReader(r)
	var pieces []string
	for {
		p, err := rd.Next()
		if len(p.Data) > 0 {
			pieces = append(pieces, string(p.Data))
		}
		if err != nil {
			return pieces, err
		}
	}
}

func TestReaderCompletesALastLineWithoutNewline(t *testing.T) {
	t.Parallel()
	pieces, err := readPieces(strings.NewReader("data: a\n\ndata: b"))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v", err)
	}
	if got, want := strings.Join(pieces, "|"), "data: a\n|\n|data: b\n|\n"; got != want {
		t.Fatalf("pieces = %q, want %q", got, want)
	}
}

func TestReaderNeverYieldsHalfALineBeforeAnError(t *testing.T) {
	t.Parallel()
	cut := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: half"), iotest.ErrReader(cut))
	pieces, err := readPieces(r)
	if !errors.Is(err, cut) {
		t.Fatalf("err = %v", err)
	}
	if got, want := strings.Join(pieces, "|"), "data: a\n|\n"; got != want {
		t.Fatalf("pieces = %q, want %q", got, want)
	}
}

func TestReaderSplitsLongLinesIntoPieces(t *testing.T) {
	t.Parallel()
	long := "data: " + strings.Repeat("x", 2*ReadBufferSize) + "\n"
	rd := NewReader(strings.NewReader(long + "\n"))
	var joined []byte
	starts := 0
	for {
		p, err := rd.Next()
		if p.Start && len(p.Data) > 0 {
			starts++
		}
		joined = append(joined, p.Data...)
		if err != nil {
			break
		}
	}
	if string(joined) != long+"\n" || starts != 2 {
		t.Fatalf("joined %d bytes with %d line starts, want %d bytes and 2", len(joined), starts, len(long)+1)
	}
}

// relayPieces drives a Stream as the gateway's relay loop does and returns
// what the client received.
func relayPieces(t *testing.T, st Stream, stream string) []byte {
	t.Helper()
	rd := NewReader(strings.NewReader(stream))
	var out []byte
	for {
		p, err := rd.Next()
		if len(p.Data) > 0 {
			o, _, ferr := st.Feed(p)
			if ferr != nil {
				t.Fatal(ferr)
			}
			out = append(out, o...)
		}
		if errors.Is(err, io.EOF) {
			o, ferr := st.Finish()
			if ferr != nil {
				t.Fatal(ferr)
			}
			return append(out, o...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestPassThroughStreamDropsOnlyTheUsageChunkItAskedFor(t *testing.T) {
	t.Parallel()
	stream := `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n" +
		`data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}` + "\n\n" +
		"data: [DONE]\n\n"
	tr := NewPassThrough(Options{Model: "m", ForceUsage: true})
	if _, _, err := tr.Request([]byte(`{"model":"x:m","stream":true,"stream_options":{"include_usage":false}}`)); err != nil {
		t.Fatal(err)
	}
	st := tr.Stream()
	got := relayPieces(t, st, stream)
	want := `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n" + "data: [DONE]\n\n"
	if string(got) != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
	if u, n := st.Usage(); u != (Usage{Prompt: 3, Completion: 1, Seen: true}) || n != 2 {
		t.Fatalf("usage = %+v, %d content bytes", u, n)
	}
}

func TestPassThroughStreamForwardsEveryByte(t *testing.T) {
	t.Parallel()
	stream := ": keep-alive\n\nevent: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5}}}\r\n\r\n" +
		"data: " + strings.Repeat("y", ReadBufferSize) + "\n\n"
	got := relayPieces(t, NewPassThrough(Options{}).Stream(), stream)
	if !bytes.Equal(got, []byte(stream)) {
		t.Fatalf("client got %d bytes, want the %d sent", len(got), len(stream))
	}
}

func TestTranslatedStreamTranslatesALastEventWithoutBlankLine(t *testing.T) {
	t.Parallel()
	st := NewAnthropicToOpenAI(Options{ClientModel: "m"}).Stream()
	got := relayPieces(t, st, `data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"hi"}}]}`+"\n")
	var names []string
	for _, ev := range parseFixtureSSE(got) {
		names = append(names, ev.name)
	}
	if got, want := strings.Join(names, ","), "message_start,content_block_start,content_block_delta,content_block_stop,message_delta,message_stop"; got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
}

func TestDialectsAnswerInTheirClientsShape(t *testing.T) {
	t.Parallel()
	if got := Anthropic.ErrorBody(529, "overloaded", "busy").(anthropicErrorBody); got.Type != "error" || got.Error.Type != "overloaded_error" || got.Detail != "busy" {
		t.Errorf("anthropic body = %+v", got)
	}
	if got := OpenAI.ErrorBody(403, "budget_exceeded", "no").(openaiErrorBody); got.Error.Type != "budget_exceeded" || got.Detail != "no" {
		t.Errorf("openai body = %+v", got)
	}
	if !bytes.HasPrefix(Anthropic.StreamError(), []byte("event: error\n")) || !bytes.HasSuffix(OpenAI.StreamError(), []byte("data: [DONE]\n\n")) {
		t.Error("stream error events in the wrong dialect")
	}
}

// BenchmarkPassThroughStream relays a 200-event chat stream through the
// reader and the pass-through state machine, as the relay loop does.
func BenchmarkPassThroughStream(b *testing.B) {
	var sb strings.Builder
	for range 200 {
		sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}],"usage":null}` + "\n\n")
	}
	sb.WriteString("data: [DONE]\n\n")
	stream := sb.String()
	b.ReportAllocs()
	for b.Loop() {
		st := NewPassThrough(Options{}).Stream()
		rd := NewReader(strings.NewReader(stream))
		for {
			p, err := rd.Next()
			if len(p.Data) > 0 {
				_, _, _ = st.Feed(p)
			}
			if err != nil {
				break
			}
		}
	}
}

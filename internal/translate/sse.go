package translate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits of the SSE reader.
const (
	// ReadBufferSize is the longest line handed over whole: a longer one
	// comes in pieces (forwarded as they come, or joined for translation).
	ReadBufferSize = 64 << 10
	// maxEventBytes bounds one event of a translated stream (the event
	// must be whole to be translated).
	maxEventBytes = 4 << 20
)

// Piece is what a Reader returns: a whole line with its newline or, for a
// line longer than the buffer, a part of one.
type Piece struct {
	Data []byte
	// Start reports that Data begins a line.
	Start bool
}

// Ends reports whether the piece ends its line.
func (p Piece) Ends() bool { return len(p.Data) > 0 && p.Data[len(p.Data)-1] == '\n' }

// Whole reports whether the piece is a whole line.
func (p Piece) Whole() bool { return p.Start && p.Ends() }

// Blank reports whether the piece is a whole empty line: the end of an
// event.
func (p Piece) Blank() bool { return p.Whole() && len(bytes.TrimRight(p.Data, "\r\n")) == 0 }

// Reader splits a provider's SSE stream into pieces without copying them.
// It is the one SSE reader: pass-through streams forward its pieces as
// they are, translated ones join them into events.
type Reader struct {
	br         *bufio.Reader
	lineStart  bool
	blankOwed  bool // the stream ended mid-line: a blank line completes it
	completion []byte
}

// NewReader reads the stream r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, ReadBufferSize), lineStart: true}
}

var blankLine = []byte("\n")

// Next returns the next piece and the error that ended the stream after
// it (io.EOF at its end). The piece is valid until the next call. A stream
// that ends without its final newline is completed, so that the client's
// parser sees the last event; a stream cut by an error never yields half
// a line that would come before the error event.
func (r *Reader) Next() (Piece, error) {
	if r.blankOwed {
		r.blankOwed = false
		r.lineStart = true
		return Piece{Data: blankLine, Start: true}, nil
	}
	chunk, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		err = nil
	}
	if err != nil && len(chunk) > 0 {
		if errors.Is(err, io.EOF) {
			r.completion = append(append(r.completion[:0], chunk...), '\n')
			chunk, err, r.blankOwed = r.completion, nil, true
		} else if r.lineStart {
			chunk = nil
		}
	}
	p := Piece{Data: chunk, Start: r.lineStart}
	if len(chunk) > 0 {
		r.lineStart = p.Ends()
	}
	return p, err
}

// Buffered reports whether more of the stream is already read: a writer
// flushes when it is not.
func (r *Reader) Buffered() bool { return r.blankOwed || r.br.Buffered() > 0 }

// eventAssembler joins a stream's pieces into events: the "event:" name
// and the joined "data:" lines, up to a blank line. Comments and other
// fields are skipped.
type eventAssembler struct {
	line     []byte
	name     string
	data     []byte
	haveData bool
}

// feed consumes one piece and reports a complete event; its data is valid
// until the next call.
func (a *eventAssembler) feed(p Piece) (name string, data []byte, ok bool, err error) {
	if p.Start {
		a.line = a.line[:0]
	}
	a.line = append(a.line, p.Data...)
	if len(a.line) > maxEventBytes {
		return "", nil, false, fmt.Errorf("stream line over %d bytes", maxEventBytes)
	}
	if !p.Ends() {
		return "", nil, false, nil
	}
	return a.field(bytes.TrimRight(a.line, "\r\n"))
}

// field applies one line.
func (a *eventAssembler) field(line []byte) (name string, data []byte, ok bool, err error) {
	switch {
	case len(line) == 0:
		if a.haveData {
			name, data = a.name, a.data
			a.reset()
			return name, data, true, nil
		}
		a.name = ""
	case line[0] == ':':
	case bytes.HasPrefix(line, []byte("event:")):
		a.name = string(bytes.TrimSpace(line[len("event:"):]))
	case bytes.HasPrefix(line, dataPrefix):
		v := line[len(dataPrefix):]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		if a.haveData {
			a.data = append(a.data, '\n')
		}
		a.data = append(a.data, v...)
		a.haveData = true
		if len(a.data) > maxEventBytes {
			return "", nil, false, fmt.Errorf("stream event over %d bytes", maxEventBytes)
		}
	}
	return "", nil, false, nil
}

// reset starts the next event, keeping the buffers.
func (a *eventAssembler) reset() {
	a.name, a.data, a.haveData = "", a.data[:0], false
}

// pending returns an event whose blank line never came (the stream ended
// after its data).
func (a *eventAssembler) pending() (name string, data []byte, ok bool) {
	if !a.haveData {
		return "", nil, false
	}
	name, data = a.name, a.data
	a.reset()
	return name, data, true
}

package llmgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/llmgateway/caddy-llm-gateway/internal/session"
)

// adminCall sends one request to the gateway's own admin API, in process,
// with credential as the caller's key: the route table, the authentication
// and the handlers are the ones an HTTP client gets, so the dashboard can
// do nothing that the admin API would refuse. It returns the status and
// the body the API answered.
func (g *Gateway) adminCall(ctx context.Context, credential, method, target string, body any) (int, []byte, error) {
	var rd *bytes.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding the %s %s body: %w", method, target, err)
		}
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("building %s %s: %w", method, target, err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &bufferedResponse{header: http.Header{}}
	route := lookupRoute(method, req.URL.EscapedPath())
	if err := g.serveRoute(rec, req, route); err != nil {
		g.writeError(rec, req, err)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.status, rec.body.Bytes(), nil
}

// bufferedResponse keeps an in-process admin API answer.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// api calls the admin API as the session's operator and decodes a 2xx
// answer into out (nil: ignored). Any other answer is an *apiError with
// the API's own status and message.
func (d *dashboard) api(r *http.Request, s *session.Session, method, target string, body, out any) error {
	return d.apiAs(r.Context(), s.Credential, method, target, body, out)
}

func (d *dashboard) apiAs(ctx context.Context, credential, method, target string, body, out any) error {
	status, data, err := d.g.adminCall(ctx, credential, method, target, body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		var e struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(data, &e) != nil || e.Detail == "" {
			e.Detail = http.StatusText(status)
		}
		return newError(status, "admin_api", e.Detail)
	}
	if out == nil || status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the answer of %s %s: %w", method, target, err)
	}
	return nil
}

// apiPath joins an admin API path and its query.
func apiPath(p string, q url.Values) string {
	if len(q) == 0 {
		return p
	}
	return p + "?" + q.Encode()
}

// pageSize is how many rows a dashboard table shows.
const pageSize = 50

// pager links a table's neighbouring pages.
type pager struct {
	Prev, Next string
	From, To   int
}

// pageQuery is skip and limit for the page a request names with ?skip=,
// asking for one row more than shown to learn whether there is a next.
func pageQuery(r *http.Request) (skip int, q url.Values) {
	skip, _ = strconv.Atoi(r.URL.Query().Get("skip"))
	skip = max(skip, 0)
	q = url.Values{}
	q.Set("skip", strconv.Itoa(skip))
	q.Set("limit", strconv.Itoa(pageSize+1))
	return skip, q
}

// pageOf trims rows to one page and links its neighbours; base is the
// page's own query (filters), without skip.
func pageOf[T any](rows []T, skip int, path string, base url.Values) ([]T, pager) {
	var p pager
	link := func(skip int) string {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		if skip > 0 {
			q.Set("skip", strconv.Itoa(skip))
		} else {
			q.Del("skip")
		}
		return apiPath(path, q)
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		p.Next = link(skip + pageSize)
	}
	if skip > 0 {
		p.Prev = link(max(skip-pageSize, 0))
	}
	if len(rows) > 0 {
		p.From, p.To = skip+1, skip+len(rows)
	}
	return rows, p
}

package llmgateway

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

func TestValidateChatMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{`{"messages":[{"role":"user","content":"hi"}]}`, ""},
		{`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}`, ""},
		{`{}`, "Field 'messages' is required"},
		{`{"messages":null}`, "Field 'messages' must be an array"},
		{`{"messages":"hi"}`, "Field 'messages' must be an array"},
		{`{"messages":{"role":"user"}}`, "Field 'messages' must be an array"},
		{`{"messages":[]}`, "Field 'messages' must not be empty"},
		{`{"messages":["hi"]}`, "Field 'messages[0]' must be an object"},
		{`{"messages":[{"role":"user","content":"hi"},null]}`, "Field 'messages[1]' must be an object"},
		{`{"messages":[{"content":"hi"}]}`, "Field 'messages[0].role' is required"},
		{`{"messages":[{"role":1,"content":"hi"}]}`, "Field 'messages[0].role' must be a string"},
		{`{"messages":[{"role":null}]}`, "Field 'messages[0].role' must be a string"},
	} {
		err := validateChatMessages(gjson.Parse(tc.body))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || ae.Message != tc.want {
			t.Errorf("%s: error %v, want 422 %q", tc.body, err, tc.want)
		}
	}
}

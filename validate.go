package llmgateway

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// validateChatMessages checks what every provider requires of a chat
// request's messages, so that a malformed request is refused with a 422
// naming the field instead of being forwarded and failing upstream.
func validateChatMessages(root gjson.Result) error {
	msgs := root.Get("messages")
	switch {
	case !msgs.Exists():
		return errValidation("Field 'messages' is required")
	case !msgs.IsArray():
		return errValidation("Field 'messages' must be an array")
	}
	n := 0
	var err error
	msgs.ForEach(func(_, m gjson.Result) bool {
		role := m.Get("role")
		switch {
		case !m.IsObject():
			err = errValidation(fmt.Sprintf("Field 'messages[%d]' must be an object", n))
		case !role.Exists():
			err = errValidation(fmt.Sprintf("Field 'messages[%d].role' is required", n))
		case role.Type != gjson.String:
			err = errValidation(fmt.Sprintf("Field 'messages[%d].role' must be a string", n))
		}
		n++
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return errValidation("Field 'messages' must not be empty")
	}
	return nil
}

package integration

import "github.com/openai/openai-go/v3/packages/param"

func openaiString(s string) param.Opt[string] { return param.NewOpt(s) }

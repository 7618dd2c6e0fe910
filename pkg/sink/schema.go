package sink

import _ "embed"

// AlertSchema is the JSON Schema of alert messages, version SchemaVersion.
//
//go:embed schema/alert-v1.json
var AlertSchema []byte

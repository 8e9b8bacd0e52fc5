package v2store

import "fmt"

// etcd's v2 error codes (etcd 3.5's etcdserver/api/v2error), the ones the
// keys API can answer with.
const (
	EcodeKeyNotFound        = 100
	EcodeTestFailed         = 101
	EcodeNotFile            = 102
	EcodeNotDir             = 104
	EcodeNodeExist          = 105
	EcodeRootROnly          = 107
	EcodeDirNotEmpty        = 108
	EcodeUnauthorized       = 110
	EcodePrevValueRequired  = 201
	EcodeTTLNaN             = 202
	EcodeIndexNaN           = 203
	EcodeInvalidField       = 209
	EcodeInvalidForm        = 210
	EcodeRefreshValue       = 211
	EcodeRefreshTTLRequired = 212
	EcodeRaftInternal       = 300
	EcodeLeaderElect        = 301
	EcodeWatcherCleared     = 400
	EcodeEventIndexCleared  = 401
)

var messages = map[int]string{
	EcodeKeyNotFound:        "Key not found",
	EcodeTestFailed:         "Compare failed",
	EcodeNotFile:            "Not a file",
	EcodeNotDir:             "Not a directory",
	EcodeNodeExist:          "Key already exists",
	EcodeRootROnly:          "Root is read only",
	EcodeDirNotEmpty:        "Directory not empty",
	EcodeUnauthorized:       "The request requires user authentication",
	EcodePrevValueRequired:  "PrevValue is Required in POST form",
	EcodeTTLNaN:             "The given TTL in POST form is not a number",
	EcodeIndexNaN:           "The given index in POST form is not a number",
	EcodeInvalidField:       "Invalid field",
	EcodeInvalidForm:        "Invalid POST form",
	EcodeRefreshValue:       "Value provided on refresh",
	EcodeRefreshTTLRequired: "A TTL must be provided on refresh",
	EcodeRaftInternal:       "Raft Internal Error",
	EcodeLeaderElect:        "During Leader Election",
	EcodeWatcherCleared:     "watcher is cleared due to etcd recovery",
	EcodeEventIndexCleared:  "The event in requested index is outdated and cleared",
}

// statuses are the HTTP statuses etcd gives the codes; any other code is
// 400 Bad Request. (Numbers, not net/http's names: this is a core package.)
var statuses = map[int]int{
	EcodeKeyNotFound:  404,
	EcodeNotFile:      403,
	EcodeDirNotEmpty:  403,
	EcodeUnauthorized: 401,
	EcodeTestFailed:   412,
	EcodeNodeExist:    412,
	EcodeRaftInternal: 500,
	EcodeLeaderElect:  500,
}

// Error is etcd's v2 error, in etcd's JSON.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

// NewError makes the error with etcd's message for code.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{ErrorCode: code, Message: messages[code], Cause: cause, Index: index}
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%s)", e.Message, e.Cause) }

// StatusCode is the HTTP status etcd answers the error with.
func (e *Error) StatusCode() int {
	if s, ok := statuses[e.ErrorCode]; ok {
		return s
	}
	return 400
}

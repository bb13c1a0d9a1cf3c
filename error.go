package latchkey

import (
	"errors"
	"fmt"
)

// Error codes. The code and message of an *Error reach the client; the
// wrapped cause reaches the server log only.
const (
	EINVALID      = "InvalidArgument"    // a value in the request is not acceptable
	ENOTFOUND     = "NotFound"           // the object does not exist, or the caller may not see it
	EEXISTS       = "AlreadyExists"      // an object with that name exists
	ECONFLICT     = "Conflict"           // the object's state forbids the change
	ELIMIT        = "LimitExceeded"      // a quota (keys per application) is reached
	EKEYACTIVE    = "KeyActive"          // delete refused while the key is Active
	EUNAUTHORIZED = "Unauthorized"       // no credential, or one that is not valid
	EFORBIDDEN    = "AccessDenied"       // the caller's role does not allow the action
	ECREDSINURL   = "CredentialsInUrl"   // a credential was sent in a URL
	ETOOLARGE     = "PayloadTooLarge"    // request body over the limit
	EMALFORMED    = "MalformedRequest"   // body is not valid JSON of the expected shape
	ERATELIMITED  = "TooManyRequests"    // the caller is throttled
	EUNAVAILABLE  = "ServiceUnavailable" // the store cannot be reached right now
	EINTERNAL     = "InternalError"      // anything else; details go to the log only
	EMETHOD       = "MethodNotAllowed"   // the path exists, the method does not
	EUNSUPPORTED  = "UnsupportedMediaType"
	EPRECONDITION = "PreconditionFailed"
	EDESTINATION  = "DestinationNotAllowed" // a webhook URL names an address the destination policy refuses
)

// Error is the one error type of latchkey. Code and Message are safe to show
// to the caller; the cause, if any, is for the server log only and must never
// contain a secret.
type Error struct {
	Code    string
	Message string
	cause   error
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps err as an EINTERNAL error whose public message says nothing
// about the cause. A nil err gives nil.
func Internal(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: EINTERNAL, Message: "internal error", cause: err}
}

// Unavailable wraps err as EUNAVAILABLE: the store could not be reached.
func Unavailable(err error) error {
	return &Error{Code: EUNAVAILABLE, Message: "the key store is unavailable; try again shortly", cause: err}
}

// WithCause returns a copy of e that records cause for the server log.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("latchkey: %s: %s: %v", e.Code, e.Message, e.cause)
	}
	return fmt.Sprintf("latchkey: %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the public message of err. Errors that are not an
// *Error, and internal errors, say "internal error" and nothing more.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}

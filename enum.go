package latchkey

import (
	"fmt"
	"strings"
)

// ParseChoice returns s if it is exactly one of accepted. Values are
// case-sensitive, as the OpenAPI document's enums are: "inactive" is not
// "Inactive". Otherwise it returns EINVALID naming field and every accepted
// value, with a hint when s differs from one of them only in case.
func ParseChoice[T ~string](field, s string, accepted []T) (T, error) {
	for _, a := range accepted {
		if string(a) == s {
			return a, nil
		}
	}
	return "", Errorf(EINVALID, "%s must be %s, not %q%s", field, Choices(accepted), s, CaseHint(s, accepted))
}

// Choices lists accepted values for a message: "a or b", "a, b or c".
func Choices[T ~string](accepted []T) string {
	var b strings.Builder
	for i, a := range accepted {
		switch {
		case i == 0:
		case i == len(accepted)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(string(a))
	}
	return b.String()
}

// CaseHint returns ` (values are case-sensitive: did you mean "Inactive"?)`
// when s equals one of accepted without regard to ASCII case, and "" when
// it does not.
func CaseHint[T ~string](s string, accepted []T) string {
	for _, a := range accepted {
		if equalFold(s, string(a)) {
			return fmt.Sprintf(" (values are case-sensitive: did you mean %q?)", string(a))
		}
	}
	return ""
}

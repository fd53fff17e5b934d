package wimse

// RFC 9530 Digest Fields: the Content-Digest of a message's content.

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"strings"
)

// ContentDigest returns the Content-Digest field value for body using
// sha-256 (RFC 9530 §2): "sha-256=:<base64>:".
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	var b strings.Builder
	b.WriteString("sha-256=")
	serializeBare(&b, sfBare{kind: sfBytes, bytes: sum[:]})
	return b.String()
}

// checkContentDigest checks a Content-Digest field value against body:
// every sha-256 and sha-512 member must match and at least one must be
// present. Other algorithms, deprecated or unknown, are ignored (RFC 9530
// §2, §5).
func checkContentDigest(field string, body []byte) error {
	members, err := parseDictionary(field)
	if err != nil {
		return proofError(ErrContentDigest, "Content-Digest: %v", err)
	}
	checked := 0
	for _, m := range members {
		var sum []byte
		switch m.key {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		if m.inner || m.item.kind != sfBytes {
			return proofError(ErrContentDigest, "Content-Digest %s is not a byte sequence", m.key)
		}
		if subtle.ConstantTimeCompare(m.item.bytes, sum) != 1 {
			return proofError(ErrContentDigest, "body does not match its %s Content-Digest", m.key)
		}
		checked++
	}
	if checked == 0 {
		return proofError(ErrContentDigest, "Content-Digest has no sha-256 or sha-512 member")
	}
	return nil
}

// joinField returns the combined value of every line of a header field,
// as RFC 9110 §5.3 combines them.
func joinField(values []string) string {
	return strings.Join(values, ", ")
}

// fieldValue returns the value of a header field as a covered component
// (RFC 9421 §2.1): each line trimmed, lines joined with ", ".
func fieldValue(values []string) string {
	trimmed := make([]string, len(values))
	for i, v := range values {
		trimmed[i] = strings.Trim(v, " \t")
	}
	return strings.Join(trimmed, ", ")
}

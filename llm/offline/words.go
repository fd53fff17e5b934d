package llmoffline

import (
	"strings"
	"unicode"
)

// stopwords are filler words that never count as an overlap.
var stopwords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be by can could do does for from get give how i
		in into is it its me my of on or our please set show so some tell that the their them then this to
		tool use using want was what when where which who why will with would you your us we let need find
		about any all also just like`) {
		stopwords[w] = true
	}
}

// token is one word of a text with its original spelling.
type token struct {
	orig string
	norm string
}

// tokenize splits s into words: runs of letters and digits, with camelCase
// and snake_case boundaries split.
func tokenize(s string) []token {
	var out []token
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			w := string(cur)
			out = append(out, token{orig: w, norm: stem(strings.ToLower(w))})
			cur = cur[:0]
		}
	}
	var prev rune
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if unicode.IsUpper(r) && unicode.IsLower(prev) {
				flush()
			}
			cur = append(cur, r)
		default:
			flush()
		}
		prev = r
	}
	flush()
	return out
}

// stem removes a plural or gerund suffix so "issues" meets "issue" and
// "searching" meets "search".
func stem(w string) string {
	switch {
	case len(w) > 5 && strings.HasSuffix(w, "ing"):
		return w[:len(w)-3]
	case len(w) > 4 && (strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "xes")):
		return w[:len(w)-2]
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss"):
		return w[:len(w)-1]
	}
	return w
}

// contentWords returns the set of normalised words of s that are not
// filler.
func contentWords(s string) map[string]bool {
	set := map[string]bool{}
	for _, t := range tokenize(s) {
		if !stopwords[t.norm] && len([]rune(t.norm)) > 1 {
			set[t.norm] = true
		}
	}
	return set
}

// countWords is the token count reported as usage.
func countWords(s string) int { return len(strings.Fields(s)) }

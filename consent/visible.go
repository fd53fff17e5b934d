package consent

// Visible returns s as the approval page shows text it did not write:
// every character a person could not see, or that could reorder or hide
// what is around it (controls, format characters such as bidirectional
// overrides and zero-width joiners, line and paragraph separators,
// invalid UTF-8), written as a \u escape. Other pages on the host's
// origin (the console) show untrusted text the same way.
func Visible(s string) string { return visible(s) }

package audit

import "time"

// appendBegins is the time an Append began, when Config.OnAppend is set
// (the zero time otherwise: the clock is not read).
func (l *Log) appendBegins() time.Time {
	if l.onAppend == nil {
		return time.Time{}
	}
	return l.now()
}

// appended tells Config.OnAppend, when set, how long an Append that began
// at began took.
func (l *Log) appended(began time.Time) {
	if l.onAppend != nil {
		l.onAppend(l.now().Sub(began))
	}
}

package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// ScalarUnmarshaler is implemented by types that decode themselves from one
// YAML scalar, given as the text written in the file. The decoder calls it
// with a pointer to the field; a returned error becomes an [ErrType] problem
// at the field's position, with the error's text as the message. A null value
// leaves the field untouched and does not call it.
type ScalarUnmarshaler interface {
	UnmarshalConfigScalar(text string) error
}

// Position is a 1-based line and column in a configuration file.
type Position struct {
	Line   int
	Column int
}

// Address is a listen address, host:port. The host is a DNS name, an IPv4
// address, a bracketed IPv6 address, or empty for every interface; the port
// is 1–65535.
type Address string

var _ ScalarUnmarshaler = (*Address)(nil)

// ParseAddress checks s and returns it as an Address.
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return "", errors.New("address is empty; want host:port such as 127.0.0.1:8420")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return "", fmt.Errorf("address %s: write an IPv6 host in brackets, like [::1]:8420", quoteValue(s))
		}
		return "", fmt.Errorf("address %s is not host:port (for example 127.0.0.1:8420)", quoteValue(s))
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("address %s has port %s; want a number from 1 to 65535", quoteValue(s), quoteValue(port))
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return "", fmt.Errorf("address %s has host %s, which is neither an IP address nor a host name", quoteValue(s), quoteValue(host))
	}
	return Address(s), nil
}

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (a *Address) UnmarshalConfigScalar(text string) error {
	parsed, err := ParseAddress(text)
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}

// String returns the address as written.
func (a Address) String() string { return string(a) }

// Host returns the host part without brackets, or "" when the address is
// not valid or names every interface.
func (a Address) Host() string {
	host, _, err := net.SplitHostPort(string(a))
	if err != nil {
		return ""
	}
	return host
}

// Port returns the port number, or 0 when the address is not valid.
func (a Address) Port() uint16 {
	_, port, err := net.SplitHostPort(string(a))
	if err != nil {
		return 0
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(p)
}

// IsLoopback reports whether the address binds the loopback interface only:
// the host is "localhost", an address in 127.0.0.0/8, or ::1.
func (a Address) IsLoopback() bool {
	host, _, err := net.SplitHostPort(string(a))
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsUnspecified reports whether the address binds every interface: an empty
// host, 0.0.0.0 or ::.
func (a Address) IsUnspecified() bool {
	host, _, err := net.SplitHostPort(string(a))
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// validHostname accepts DNS names: dot-separated labels of letters, digits
// and hyphens, neither starting nor ending with a hyphen.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// LogLevel is the minimum level of log records the host writes.
type LogLevel string

// Log levels.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

var logLevels = []LogLevel{LevelDebug, LevelInfo, LevelWarn, LevelError}

// Valid reports whether l is one of the defined levels.
func (l LogLevel) Valid() bool { return oneOf(l, logLevels) }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (l *LogLevel) UnmarshalConfigScalar(text string) error {
	v := LogLevel(text)
	if !v.Valid() {
		return enumError("log level", text, logLevels)
	}
	*l = v
	return nil
}

// SlogLevel returns the matching [slog.Level]; an invalid level maps to
// [slog.LevelInfo].
func (l LogLevel) SlogLevel() slog.Level {
	switch l {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// LogFormat is the encoding of log records.
type LogFormat string

// Log formats.
const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

var logFormats = []LogFormat{FormatText, FormatJSON}

// Valid reports whether f is one of the defined formats.
func (f LogFormat) Valid() bool { return oneOf(f, logFormats) }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (f *LogFormat) UnmarshalConfigScalar(text string) error {
	v := LogFormat(text)
	if !v.Valid() {
		return enumError("log format", text, logFormats)
	}
	*f = v
	return nil
}

// StorageDriver names the storage backend.
type StorageDriver string

// Storage drivers: [DriverSQLite], one file in the data directory (the
// default), and [DriverPostgres], one PostgreSQL database shared by the
// hosts of a deployment.
const (
	DriverSQLite   StorageDriver = "sqlite"
	DriverPostgres StorageDriver = "postgres"
)

var storageDrivers = []StorageDriver{DriverSQLite, DriverPostgres}

// Known reports whether d is a driver name this package recognises.
func (d StorageDriver) Known() bool { return oneOf(d, storageDrivers) }

// Supported reports whether d can be used by this version of agenthost.
func (d StorageDriver) Supported() bool { return d == DriverSQLite || d == DriverPostgres }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (d *StorageDriver) UnmarshalConfigScalar(text string) error {
	v := StorageDriver(text)
	if !v.Known() {
		return enumError("storage driver", text, storageDrivers)
	}
	*d = v
	return nil
}

func oneOf[T comparable](v T, set []T) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

func enumError[T ~string](what, got string, set []T) error {
	names := make([]string, len(set))
	for i, s := range set {
		names[i] = string(s)
	}
	return fmt.Errorf("unknown %s %s; want one of %s", what, quoteValue(got), strings.Join(names, ", "))
}

// quoteValue quotes a value from the file for a message, shortening long
// values.
func quoteValue(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

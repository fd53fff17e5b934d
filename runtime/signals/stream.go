package signals

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Audience is a JWT aud value: one string or an array of strings. It
// marshals a single value as a string.
type Audience []string

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud is not a string or an array of strings")
	}
	*a = many
	return nil
}

// Delivery is a stream's delivery method (SSF 1.0 §8.1.1).
type Delivery struct {
	// Method is DeliveryPush or DeliveryPoll.
	Method string `json:"method"`
	// EndpointURL is the receiver's push endpoint, or the transmitter's
	// poll endpoint.
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is the Authorization value the transmitter
	// sends with each push (receiver-supplied; never echoed back).
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// StreamConfig is an SSF stream configuration (SSF 1.0 §8.1.1). Fields
// marked T are set by the transmitter, R by the receiver.
type StreamConfig struct {
	StreamID                string    `json:"stream_id,omitempty"`                 // T
	Iss                     string    `json:"iss,omitempty"`                       // T
	Aud                     Audience  `json:"aud,omitempty"`                       // T (immutable)
	EventsSupported         []string  `json:"events_supported,omitempty"`          // T
	EventsRequested         []string  `json:"events_requested,omitempty"`          // R
	EventsDelivered         []string  `json:"events_delivered,omitempty"`          // T
	Delivery                *Delivery `json:"delivery,omitempty"`                  // R (poll endpoint T)
	MinVerificationInterval int       `json:"min_verification_interval,omitempty"` // T, seconds
	Description             string    `json:"description,omitempty"`               // R
	InactivityTimeout       int       `json:"inactivity_timeout,omitempty"`        // T, seconds
}

// StreamStatus is the body of the status endpoint (SSF 1.0 §8.1.2).
type StreamStatus struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// SubjectRequest is the body of the add and remove subject endpoints
// (SSF 1.0 §8.1.3).
type SubjectRequest struct {
	StreamID string  `json:"stream_id"`
	Subject  Subject `json:"subject"`
	Verified *bool   `json:"verified,omitempty"`
}

// VerificationRequest is the body of the verification endpoint (SSF 1.0
// §8.1.4).
type VerificationRequest struct {
	StreamID string `json:"stream_id"`
	State    string `json:"state,omitempty"`
}

// Stream is a stream as a [Transmitter] keeps it.
type Stream struct {
	// Config is the stream configuration, delivery secret included.
	Config StreamConfig
	// Owner is the client id of the receiver that created the stream.
	Owner string
	// Status is enabled, paused or disabled; Reason says why.
	Status string
	Reason string
	// Subjects were added by the receiver; Excluded were removed while the
	// transmitter's default_subjects is ALL.
	Subjects []Subject
	Excluded []Subject
	// Created and LastVerification are timestamps.
	Created          time.Time
	LastVerification time.Time
}

// clone returns a deep copy of s.
func (s Stream) clone() Stream {
	c := s
	c.Config.Aud = slices.Clone(s.Config.Aud)
	c.Config.EventsSupported = slices.Clone(s.Config.EventsSupported)
	c.Config.EventsRequested = slices.Clone(s.Config.EventsRequested)
	c.Config.EventsDelivered = slices.Clone(s.Config.EventsDelivered)
	if s.Config.Delivery != nil {
		d := *s.Config.Delivery
		c.Config.Delivery = &d
	}
	c.Subjects = slices.Clone(s.Subjects)
	c.Excluded = slices.Clone(s.Excluded)
	return c
}

// StreamStore persists a [Transmitter]'s streams. Get, Update and Delete
// return an error wrapping [ErrStreamNotFound] for an unknown id, Create
// one wrapping [ErrStreamExists] for a taken id.
type StreamStore interface {
	CreateStream(ctx context.Context, s Stream) error
	GetStream(ctx context.Context, id string) (Stream, error)
	// ListStreams returns the streams of owner, or every stream when
	// owner is empty.
	ListStreams(ctx context.Context, owner string) ([]Stream, error)
	UpdateStream(ctx context.Context, s Stream) error
	DeleteStream(ctx context.Context, id string) error
}

// MemoryStreamStore is an in-memory [StreamStore]. It is safe for
// concurrent use.
type MemoryStreamStore struct {
	mu      sync.Mutex
	streams map[string]Stream
}

// NewMemoryStreamStore returns an empty MemoryStreamStore.
func NewMemoryStreamStore() *MemoryStreamStore {
	return &MemoryStreamStore{streams: make(map[string]Stream)}
}

// CreateStream implements [StreamStore].
func (m *MemoryStreamStore) CreateStream(_ context.Context, s Stream) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.streams[s.Config.StreamID]; ok {
		return fmt.Errorf("%w: %q", ErrStreamExists, s.Config.StreamID)
	}
	m.streams[s.Config.StreamID] = s.clone()
	return nil
}

// GetStream implements [StreamStore].
func (m *MemoryStreamStore) GetStream(_ context.Context, id string) (Stream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.streams[id]
	if !ok {
		return Stream{}, fmt.Errorf("%w: %q", ErrStreamNotFound, truncate(id, 64))
	}
	return s.clone(), nil
}

// ListStreams implements [StreamStore], in creation order.
func (m *MemoryStreamStore) ListStreams(_ context.Context, owner string) ([]Stream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Stream{}
	for _, s := range m.streams {
		if owner == "" || s.Owner == owner {
			out = append(out, s.clone())
		}
	}
	slices.SortFunc(out, func(a, b Stream) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		if a.Config.StreamID < b.Config.StreamID {
			return -1
		}
		return 1
	})
	return out, nil
}

// UpdateStream implements [StreamStore].
func (m *MemoryStreamStore) UpdateStream(_ context.Context, s Stream) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.streams[s.Config.StreamID]; !ok {
		return fmt.Errorf("%w: %q", ErrStreamNotFound, truncate(s.Config.StreamID, 64))
	}
	m.streams[s.Config.StreamID] = s.clone()
	return nil
}

// DeleteStream implements [StreamStore].
func (m *MemoryStreamStore) DeleteStream(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.streams[id]; !ok {
		return fmt.Errorf("%w: %q", ErrStreamNotFound, truncate(id, 64))
	}
	delete(m.streams, id)
	return nil
}

package signals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Event type URIs: CAEP 1.0 (base
// https://schemas.openid.net/secevent/caep/event-type/) and the SSF 1.0
// stream events.
const (
	caepBase = "https://schemas.openid.net/secevent/caep/event-type/"
	ssfBase  = "https://schemas.openid.net/secevent/ssf/event-type/"

	EventSessionRevoked         = caepBase + "session-revoked"
	EventTokenClaimsChange      = caepBase + "token-claims-change"
	EventCredentialChange       = caepBase + "credential-change"
	EventAssuranceLevelChange   = caepBase + "assurance-level-change"
	EventDeviceComplianceChange = caepBase + "device-compliance-change"
	EventSessionEstablished     = caepBase + "session-established"
	EventSessionPresented       = caepBase + "session-presented"
	EventRiskLevelChange        = caepBase + "risk-level-change"

	EventVerification  = ssfBase + "verification"
	EventStreamUpdated = ssfBase + "stream-updated"
)

// CAEPEvents lists the CAEP 1.0 event types this package decodes, the
// default events_supported of a [Transmitter].
var CAEPEvents = []string{
	EventSessionRevoked,
	EventTokenClaimsChange,
	EventCredentialChange,
	EventAssuranceLevelChange,
	EventDeviceComplianceChange,
	EventSessionEstablished,
	EventSessionPresented,
	EventRiskLevelChange,
}

// IsStreamEvent reports whether typ is an SSF stream event (verification
// or stream-updated), which concerns the stream and is never passed to a
// [Handler].
func IsStreamEvent(typ string) bool {
	return typ == EventVerification || typ == EventStreamUpdated
}

// Stream status values (SSF 1.0 §8.1.2).
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// Event is one verified security event: the SET's envelope claims and the
// decoded payload of its single event. Only the members of its Type are
// set; Raw holds the payload as received.
type Event struct {
	// Type is the event type URI.
	Type string
	// Subject is the SET's sub_id, or the legacy subject member of the
	// event when sub_id is absent.
	Subject Subject

	// SET envelope (RFC 8417 §2.2).
	Issuer   string
	Audience []string
	JTI      string
	IssuedAt time.Time
	TXN      string

	// Members common to CAEP events (CAEP 1.0 §2).
	EventTimestamp   time.Time
	InitiatingEntity string            // admin, user, policy or system
	ReasonAdmin      map[string]string // language tag → text
	ReasonUser       map[string]string

	// token-claims-change.
	Claims map[string]any

	// credential-change.
	CredentialType string
	ChangeType     string // create, revoke, update or delete
	FriendlyName   string
	X509Issuer     string
	X509Serial     string
	FIDO2AAGUID    string

	// assurance-level-change (Namespace, levels, ChangeDirection) and
	// risk-level-change (Principal, levels LOW/MEDIUM/HIGH, RiskReason).
	Namespace       string
	CurrentLevel    string
	PreviousLevel   string
	ChangeDirection string
	Principal       string
	RiskReason      string

	// device-compliance-change: compliant or not-compliant.
	CurrentStatus  string
	PreviousStatus string

	// session-established and session-presented.
	FPUA  string
	ACR   string
	AMR   []string
	ExtID string

	// verification: the state the receiver asked to be echoed.
	State string
	// stream-updated: the new stream status and its reason.
	Status string
	Reason string

	// Raw is the event payload as received (nil on events built locally).
	Raw json.RawMessage
}

// eventPayload is the wire form of an event payload.
type eventPayload struct {
	Subject          json.RawMessage `json:"subject,omitempty"`
	EventTimestamp   json.RawMessage `json:"event_timestamp,omitempty"`
	InitiatingEntity string          `json:"initiating_entity,omitempty"`
	ReasonAdmin      json.RawMessage `json:"reason_admin,omitempty"`
	ReasonUser       json.RawMessage `json:"reason_user,omitempty"`

	Claims map[string]any `json:"claims,omitempty"`

	CredentialType string `json:"credential_type,omitempty"`
	ChangeType     string `json:"change_type,omitempty"`
	FriendlyName   string `json:"friendly_name,omitempty"`
	X509Issuer     string `json:"x509_issuer,omitempty"`
	X509Serial     string `json:"x509_serial,omitempty"`
	FIDO2AAGUID    string `json:"fido2_aaguid,omitempty"`

	Namespace       string `json:"namespace,omitempty"`
	CurrentLevel    string `json:"current_level,omitempty"`
	PreviousLevel   string `json:"previous_level,omitempty"`
	ChangeDirection string `json:"change_direction,omitempty"`
	Principal       string `json:"principal,omitempty"`
	RiskReason      string `json:"risk_reason,omitempty"`

	CurrentStatus  string `json:"current_status,omitempty"`
	PreviousStatus string `json:"previous_status,omitempty"`

	FPUA  string   `json:"fp_ua,omitempty"`
	ACR   string   `json:"acr,omitempty"`
	AMR   []string `json:"amr,omitempty"`
	ExtID string   `json:"ext_id,omitempty"`

	State  string `json:"state,omitempty"`
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// decodeEvent decodes the payload of an event of type typ into ev and
// checks the members its definition requires. It returns the legacy
// subject member, if any.
func decodeEvent(typ string, raw json.RawMessage, ev *Event) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("event payload is not a JSON object")
	}
	if _, err := objectMembers(raw); err != nil {
		return nil, fmt.Errorf("event payload: %v", err)
	}
	var p eventPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("event payload: %v", err)
	}
	ev.Type = typ
	ev.Raw = append(json.RawMessage(nil), raw...)
	if len(p.EventTimestamp) > 0 {
		t, err := numericDate(p.EventTimestamp)
		if err != nil {
			return nil, fmt.Errorf("event_timestamp: %v", err)
		}
		ev.EventTimestamp = t
	}
	if p.InitiatingEntity != "" && !slices.Contains([]string{"admin", "user", "policy", "system"}, p.InitiatingEntity) {
		return nil, fmt.Errorf("initiating_entity %q is not admin, user, policy or system", truncate(p.InitiatingEntity, 32))
	}
	ev.InitiatingEntity = p.InitiatingEntity
	var err error
	if ev.ReasonAdmin, err = reasonMap(p.ReasonAdmin); err != nil {
		return nil, fmt.Errorf("reason_admin: %v", err)
	}
	if ev.ReasonUser, err = reasonMap(p.ReasonUser); err != nil {
		return nil, fmt.Errorf("reason_user: %v", err)
	}
	ev.Claims = p.Claims
	ev.CredentialType, ev.ChangeType, ev.FriendlyName = p.CredentialType, p.ChangeType, p.FriendlyName
	ev.X509Issuer, ev.X509Serial, ev.FIDO2AAGUID = p.X509Issuer, p.X509Serial, p.FIDO2AAGUID
	ev.Namespace, ev.CurrentLevel, ev.PreviousLevel, ev.ChangeDirection = p.Namespace, p.CurrentLevel, p.PreviousLevel, p.ChangeDirection
	ev.Principal, ev.RiskReason = p.Principal, p.RiskReason
	ev.CurrentStatus, ev.PreviousStatus = p.CurrentStatus, p.PreviousStatus
	ev.FPUA, ev.ACR, ev.AMR, ev.ExtID = p.FPUA, p.ACR, p.AMR, p.ExtID
	ev.State, ev.Status, ev.Reason = p.State, p.Status, p.Reason
	if err := ev.checkMembers(); err != nil {
		return nil, err
	}
	return p.Subject, nil
}

// checkMembers checks the members the definition of ev.Type requires.
func (ev *Event) checkMembers() error {
	oneOf := func(name, v string, allowed ...string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%s %q is not one of %q", name, truncate(v, 32), allowed)
		}
		return nil
	}
	switch ev.Type {
	case EventSessionRevoked, EventSessionEstablished, EventSessionPresented, EventVerification:
	case EventTokenClaimsChange:
		if ev.Claims == nil {
			return fmt.Errorf("claims is required")
		}
	case EventCredentialChange:
		if ev.CredentialType == "" {
			return fmt.Errorf("credential_type is required")
		}
		return oneOf("change_type", ev.ChangeType, "create", "revoke", "update", "delete")
	case EventAssuranceLevelChange:
		if ev.Namespace == "" || ev.CurrentLevel == "" {
			return fmt.Errorf("namespace and current_level are required")
		}
		if ev.ChangeDirection != "" {
			return oneOf("change_direction", ev.ChangeDirection, "increase", "decrease")
		}
	case EventDeviceComplianceChange:
		if err := oneOf("current_status", ev.CurrentStatus, "compliant", "not-compliant"); err != nil {
			return err
		}
		if ev.PreviousStatus != "" {
			return oneOf("previous_status", ev.PreviousStatus, "compliant", "not-compliant")
		}
	case EventRiskLevelChange:
		if ev.Principal == "" {
			return fmt.Errorf("principal is required")
		}
		if err := oneOf("current_level", ev.CurrentLevel, "LOW", "MEDIUM", "HIGH"); err != nil {
			return err
		}
		if ev.PreviousLevel != "" {
			return oneOf("previous_level", ev.PreviousLevel, "LOW", "MEDIUM", "HIGH")
		}
	case EventStreamUpdated:
		return oneOf("status", ev.Status, StatusEnabled, StatusPaused, StatusDisabled)
	default:
		return fmt.Errorf("%w: %q", ErrUnsupportedEvent, truncate(ev.Type, 128))
	}
	return nil
}

// payload returns the wire form of ev's event payload.
func (ev *Event) payload() (map[string]any, error) {
	if err := ev.checkMembers(); err != nil {
		return nil, err
	}
	p := eventPayload{
		InitiatingEntity: ev.InitiatingEntity,
		Claims:           ev.Claims,
		CredentialType:   ev.CredentialType, ChangeType: ev.ChangeType, FriendlyName: ev.FriendlyName,
		X509Issuer: ev.X509Issuer, X509Serial: ev.X509Serial, FIDO2AAGUID: ev.FIDO2AAGUID,
		Namespace: ev.Namespace, CurrentLevel: ev.CurrentLevel, PreviousLevel: ev.PreviousLevel,
		ChangeDirection: ev.ChangeDirection, Principal: ev.Principal, RiskReason: ev.RiskReason,
		CurrentStatus: ev.CurrentStatus, PreviousStatus: ev.PreviousStatus,
		FPUA: ev.FPUA, ACR: ev.ACR, AMR: ev.AMR, ExtID: ev.ExtID,
		State: ev.State, Status: ev.Status, Reason: ev.Reason,
	}
	if !ev.EventTimestamp.IsZero() {
		p.EventTimestamp = json.RawMessage(fmt.Sprint(ev.EventTimestamp.Unix()))
	}
	var err error
	if len(ev.ReasonAdmin) > 0 {
		if p.ReasonAdmin, err = json.Marshal(ev.ReasonAdmin); err != nil {
			return nil, err
		}
	}
	if len(ev.ReasonUser) > 0 {
		if p.ReasonUser, err = json.Marshal(ev.ReasonUser); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	if ev.Type == EventTokenClaimsChange && len(ev.Claims) == 0 {
		out["claims"] = map[string]any{}
	}
	return out, nil
}

// reasonMap decodes reason_admin or reason_user: an object of language
// tag → text (CAEP 1.0). A bare string, as earlier drafts sent, is kept
// under the tag "und".
func reasonMap(raw json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err == nil {
		return m, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("not an object of strings")
	}
	return map[string]string{"und": s}, nil
}

// numericDate decodes a NumericDate (RFC 7519 §2).
func numericDate(raw json.RawMessage) (time.Time, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, fmt.Errorf("not a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

package a2aserver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

func ownerCtx(agent, sub, client string) context.Context {
	c := &resource.Caller{Issuer: "https://as.example", Subject: sub, ClientID: client}
	return withCall(context.Background(), &call{agent: agent, caller: c, owner: ownerKey(agent, c)})
}

func task(id string, state a2a.TaskState) *a2a.Task {
	return &a2a.Task{ID: a2a.TaskID(id), ContextID: "ctx", Status: a2a.TaskStatus{State: state},
		History: []*a2a.Message{a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "hi " + id})}}
}

func TestTaskStoreOwnership(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newTaskStore(10, time.Hour, func() time.Time { return now })
	alice := ownerCtx("research", "alice", "cli")
	if err := s.Save(alice, task("t1", a2a.TaskStateWorking)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(alice, "t1")
	if err != nil || got.History[0].Parts[0].(a2a.TextPart).Text != "hi t1" {
		t.Fatalf("Get: %+v %v", got, err)
	}
	// Every Get is a copy.
	got.Status.State = a2a.TaskStateFailed
	if again, _ := s.Get(alice, "t1"); again.Status.State != a2a.TaskStateWorking {
		t.Fatal("Get returned the stored task itself")
	}
	others := map[string]context.Context{
		"another subject":  ownerCtx("research", "bob", "cli"),
		"another client":   ownerCtx("research", "alice", "cli2"),
		"another agent":    ownerCtx("payments", "alice", "cli"),
		"no caller at all": context.Background(),
		// Length prefixes keep the four apart.
		"shifted fields": ownerCtx("research", "alicecli", ""),
	}
	for name, ctx := range others {
		if _, err := s.Get(ctx, "t1"); !errors.Is(err, a2a.ErrTaskNotFound) {
			t.Errorf("%s: Get = %v", name, err)
		}
		if err := s.Save(ctx, task("t1", a2a.TaskStateCompleted)); err == nil {
			t.Errorf("%s: Save over another's task succeeded", name)
		}
		if s.owns(ownerFrom(ctx), "t1") {
			t.Errorf("%s: owns", name)
		}
	}
	if got, _ := s.Get(alice, "t1"); got.Status.State != a2a.TaskStateWorking {
		t.Fatal("another owner's Save changed the task")
	}
}

func TestTaskStoreExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newTaskStore(10, time.Hour, func() time.Time { return now })
	ctx := ownerCtx("research", "alice", "cli")
	_ = s.Save(ctx, task("old", a2a.TaskStateInputRequired))
	now = now.Add(59 * time.Minute)
	_ = s.Save(ctx, task("new", a2a.TaskStateCompleted))
	if _, err := s.Get(ctx, "old"); err != nil {
		t.Fatalf("before the TTL: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := s.Get(ctx, "old"); !errors.Is(err, a2a.ErrTaskNotFound) {
		t.Fatalf("after the TTL: %v", err)
	}
	if _, err := s.Get(ctx, "new"); err != nil {
		t.Fatalf("updated within the TTL: %v", err)
	}
	now = now.Add(2 * time.Hour)
	_ = s.Save(ctx, task("later", a2a.TaskStateWorking))
	if n := s.len(); n != 1 {
		t.Fatalf("%d tasks after a sweep, want 1", n)
	}
}

func TestTaskStoreBound(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newTaskStore(3, time.Hour, func() time.Time { return now })
	ctx := ownerCtx("research", "alice", "cli")
	save := func(id string, st a2a.TaskState) error {
		now = now.Add(time.Second)
		return s.Save(ctx, task(id, st))
	}
	for i, st := range []a2a.TaskState{a2a.TaskStateCompleted, a2a.TaskStateWorking, a2a.TaskStateFailed} {
		if err := save(fmt.Sprint("t", i), st); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the oldest final task (t0) makes room.
	if err := s.admit(); err != nil {
		t.Fatal(err)
	}
	if err := save("t3", a2a.TaskStateWorking); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "t0"); !errors.Is(err, a2a.ErrTaskNotFound) {
		t.Fatalf("t0 kept: %v", err)
	}
	// Then t2, the only final one left.
	if err := save("t4", a2a.TaskStateWorking); err != nil {
		t.Fatal(err)
	}
	// Three tasks in progress: no room, and an update still works.
	if err := s.admit(); !errors.Is(err, a2a.ErrServerError) {
		t.Fatalf("admit = %v", err)
	}
	if err := save("t5", a2a.TaskStateWorking); !errors.Is(err, a2a.ErrServerError) {
		t.Fatalf("Save of a fourth running task = %v", err)
	}
	if err := save("t1", a2a.TaskStateCompleted); err != nil {
		t.Fatalf("update in a full store: %v", err)
	}
	if n := s.len(); n != 3 {
		t.Fatalf("%d tasks", n)
	}
}

package vfs

import (
	"errors"
	"testing"
)

func TestFaultyFailAfterIsOneShot(t *testing.T) {
	m := NewMem()
	ff := NewFaulty(m)
	f, err := ff.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	ff.FailAfter(OpSync, 1)
	if err := f.Sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("second sync: %v, want ErrInjected", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("third sync: %v (fault should be one-shot)", err)
	}
	if m.SyncCount() != 2 {
		t.Fatalf("underlying SyncCount = %d, want 2 (the failed sync must not reach it)", m.SyncCount())
	}
	ff.FailAfter(OpWrite, 0)
	if n, err := f.Write([]byte("abc")); n != 0 || !errors.Is(err, ErrInjected) {
		t.Fatalf("Write = %d, %v; want 0, ErrInjected", n, err)
	}
	if sz, _ := f.Size(); sz != 0 {
		t.Fatalf("failed write changed the file: size %d", sz)
	}
	if ff.Injected() != 2 {
		t.Fatalf("Injected = %d, want 2", ff.Injected())
	}
}

func TestFaultyHook(t *testing.T) {
	ff := NewFaulty(NewMem())
	boom := errors.New("boom")
	ff.SetHook(func(op Op, name string) error {
		if op == OpCreate && name == "bad" {
			return boom
		}
		return nil
	})
	if _, err := ff.Create("bad"); !errors.Is(err, boom) {
		t.Fatalf("Create(bad) = %v, want boom", err)
	}
	if _, err := ff.Create("good"); err != nil {
		t.Fatalf("Create(good) = %v", err)
	}
	ff.SetHook(nil)
	if _, err := ff.Create("bad"); err != nil {
		t.Fatalf("Create(bad) after hook removed = %v", err)
	}
}

package config

import (
	"reflect"
	"testing"
	"time"
)

func TestParseInitialCluster(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Member
		wantErr string
	}{
		{in: "", want: nil},
		{in: " , ,", want: nil},
		{in: "default=http://localhost:2380",
			want: []Member{{"default", []string{"http://localhost:2380"}}}},
		{in: " n1 = http://10.0.0.1:2380 , n2=http://10.0.0.2:2380 ",
			want: []Member{{"n1", []string{"http://10.0.0.1:2380"}}, {"n2", []string{"http://10.0.0.2:2380"}}}},
		{in: "n1=http://a:2380,n2=http://c:2380,n1=https://b:2380,,",
			want: []Member{{"n1", []string{"http://a:2380", "https://b:2380"}}, {"n2", []string{"http://c:2380"}}}},
		{in: "n1=unix://n1.sock:0,n2=unixs://n2",
			want: []Member{{"n1", []string{"unix://n1.sock:0"}}, {"n2", []string{"unixs://n2"}}}},
		{in: "n1", wantErr: `entry "n1" is not of the form name=URL`},
		{in: "n1=http://a:2380,n2", wantErr: `entry "n2" is not of the form name=URL`},
		{in: "=http://a:2380", wantErr: `entry "=http://a:2380" has an empty member name`},
		{in: "n1=", wantErr: `entry "n1=" has an empty URL`},
		{in: "n1=http://a", wantErr: `member "n1": URL "http://a" does not have a host:port address`},
		{in: "n1=ftp://a:1", wantErr: `member "n1": URL "ftp://a:1" has scheme "ftp"; want http, https, unix or unixs`},
		{in: "n1=http://a:2380,n2=http://a:2380", wantErr: `URL "http://a:2380" is listed twice (members "n1" and "n2")`},
	} {
		got, err := ParseInitialCluster(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseInitialCluster(%q) error = %v, want %s", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseInitialCluster(%q) error = %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseInitialCluster(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if back, err := ParseInitialCluster(FormatInitialCluster(got)); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("round trip of %q through FormatInitialCluster = %+v, %v", tc.in, back, err)
		}
	}
}

func TestURLListsAreTrimmedAndDeduplicated(t *testing.T) {
	c, err := Parse([]string{
		"--listen-client-urls", " http://127.0.0.1:2379 ,http://127.0.0.1:2379,unix://cairn.sock",
		"--advertise-client-urls", "https://10.0.0.1:2379",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatURLs(c.ListenClientURLs); got != "http://127.0.0.1:2379,unix://cairn.sock" {
		t.Fatalf("ListenClientURLs = %q", got)
	}
}

func TestAutoCompaction(t *testing.T) {
	for _, tc := range []struct {
		mode, retention string
		wantRetention   time.Duration
		wantRevisions   int64
	}{
		{"periodic", "0", 0, 0},
		{"periodic", "1", time.Hour, 0},
		{"periodic", "72", 72 * time.Hour, 0},
		{"periodic", "30m", 30 * time.Minute, 0},
		{"periodic", "1h30m", 90 * time.Minute, 0},
		{"periodic", " 5m ", 5 * time.Minute, 0},
		{"revision", "0", 0, 0},
		{"revision", "1000", 0, 1000},
	} {
		c := Default()
		c.AutoCompactionMode, c.AutoCompactionRetention = tc.mode, tc.retention
		mode, ret, revs, err := c.AutoCompaction()
		if err != nil || mode != tc.mode || ret != tc.wantRetention || revs != tc.wantRevisions {
			t.Errorf("%s %q: AutoCompaction() = %q, %v, %d, %v; want %q, %v, %d, nil",
				tc.mode, tc.retention, mode, ret, revs, err, tc.mode, tc.wantRetention, tc.wantRevisions)
		}
	}
	c := Default()
	c.AutoCompactionMode, c.AutoCompactionRetention = "periodic", "-30m"
	if _, _, _, err := c.AutoCompaction(); err == nil ||
		err.Error() != `invalid value "-30m" for --auto-compaction-retention (periodic mode): must not be negative` {
		t.Fatalf("negative duration: err = %v", err)
	}
	c.AutoCompactionMode, c.AutoCompactionRetention = "revision", "-3"
	if _, _, _, err := c.AutoCompaction(); err == nil ||
		err.Error() != `invalid value "-3" for --auto-compaction-retention (revision mode): must not be negative` {
		t.Fatalf("negative revisions: err = %v", err)
	}
}

// Package console tests Cairn's web console (--enable-console, #19) in a
// real headless Chromium, driven over the DevTools protocol by chromedp,
// against a three-member cluster of the real binary: the member table and
// the leader, a put made in the page and read back with clientv3, a watch
// that shows a put made with etcdctl, operations with etcdctl's errors,
// and the leader killed and its successor shown. Every page is saved as a
// screenshot (CAIRN_CONSOLE_SCREENSHOTS, else a temporary directory named
// in the log).
//
// It is its own module so that chromedp never enters Cairn's go.mod
// (make test-console). The browser is CAIRN_CONSOLE_CHROMIUM, else the
// first of chromium, chromium-browser, google-chrome on PATH; without
// one the tests fail saying so (the Makefile target checks first and
// installs Debian's chromium where it can).
package console

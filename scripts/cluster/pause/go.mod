// The test node's sandbox ("pause") image command: ours, built static.
module kubesync.test/pause

go 1.26.0

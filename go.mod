module github.com/ckptio/ckptio

go 1.26.8

require github.com/zeebo/blake3 v0.2.4

require (
	github.com/klauspost/cpuid/v2 v2.2.5 // indirect
	golang.org/x/sys v0.45.0 // indirect
)

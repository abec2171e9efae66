"""What the tests and the benches share and the package does not need at run time: the tone corpus,
s3prl's runner in a subprocess, random upstreams of more families, peak-memory measurement."""

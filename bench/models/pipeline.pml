/* three-stage pipeline with value checks: twin of pipeline.toml.
 * spin -DN=2 -DCAP=2 -a pipeline.pml */
#ifndef N
#define N 2
#endif
#ifndef CAP
#define CAP 2
#endif

chan raw = [CAP] of { int };
chan cooked = [CAP] of { int };

active proctype parse() {
	int k = 0;
	do
	:: k < N -> raw!k; k++
	:: else -> break
	od
}

active proctype transform() {
	int k = 0;
	int v;
	do
	:: k < N -> raw?v; cooked!2 * v + 1; k++
	:: else -> break
	od
}

active proctype store() {
	int k = 0;
	int v;
	do
	:: k < N -> cooked?v; assert(v == 2 * k + 1); k++
	:: else -> break
	od
}

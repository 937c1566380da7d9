/* producer/consumer, in-order check: twin of producer-consumer.toml.
 * spin -DN=3 -DCAP=2 -a producer-consumer.pml */
#ifndef N
#define N 3
#endif
#ifndef CAP
#define CAP 2
#endif

chan c = [CAP] of { int };

active proctype producer() {
	int k = 0;
	do
	:: k < N -> c!k; k++
	:: else -> break
	od
}

active proctype consumer() {
	int k = 0;
	int v;
	do
	:: k < N -> c?v; assert(v == k); k++
	:: else -> break
	od
}

/* a ring of three servers making nested synchronous calls: twin of ring.toml.
 * spin -DROUNDS=1 -a ring.pml
 * Deadlock (invalid end state) reachable, not inevitable. */
#ifndef ROUNDS
#define ROUNDS 1
#endif

mtype = { REQ, ANS };

chan req[3] = [0] of { mtype, chan, int };
chan back[3] = [1] of { mtype };
chan ans[3] = [1] of { mtype };

proctype server(int i) {
	chan reply;
	int hops;
end:	do
	:: req[i]?REQ, reply, hops ->
		if
		:: hops > 0 -> req[(i + 1) % 3]!REQ, back[i], hops - 1; back[i]?ANS
		:: else -> skip
		fi;
		reply!ANS
	od
}

proctype client(int i) {
	int k = 0;
	do
	:: k < ROUNDS -> req[i]!REQ, ans[i], 1; ans[i]?ANS; k++
	:: else -> break
	od
}

init {
	atomic {
		run server(0); run server(1); run server(2);
		run client(0); run client(1); run client(2)
	}
}

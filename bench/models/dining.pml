/* dining philosophers with fork servers: twin of dining.toml.
 * spin -DMEALS=1 -DORDERED=0 -a dining.pml
 * ORDERED 0: left fork first, deadlock (invalid end state) reachable;
 * ORDERED 1: lower-numbered fork first, no deadlock. A request carries
 * the philosopher's number; the fork answers on that philosopher's
 * channel (the scenario carries the channel itself). */
#ifndef MEALS
#define MEALS 1
#endif
#ifndef ORDERED
#define ORDERED 0
#endif
#define NONE 3

mtype = { ACQ, REL, GRANTED };

chan fork[3] = [4] of { mtype, int };
chan grant[3] = [1] of { mtype };

proctype forksrv(int i) {
	int holder = NONE;
	int waiter = NONE;
	int served = 0;
	mtype op;
	int who;
	do
	:: served < 4 * MEALS ->
		fork[i]?op, who;
		served++;
		if
		:: op == ACQ ->
			if
			:: holder == NONE -> holder = who; grant[who]!GRANTED
			:: else -> assert(waiter == NONE); waiter = who
			fi
		:: else ->
			assert(holder == who);
			holder = waiter;
			waiter = NONE;
			if
			:: holder != NONE -> grant[holder]!GRANTED
			:: else -> skip
			fi
		fi
	:: else -> break
	od
}

proctype phil(int i) {
	int a = i;
	int b = (i + 1) % 3;
	int t;
	int k = 0;
	if
	:: ORDERED && b < a -> t = a; a = b; b = t
	:: else -> skip
	fi;
	do
	:: k < MEALS ->
		fork[a]!ACQ, i;
		grant[i]?GRANTED;
		fork[b]!ACQ, i;
		grant[i]?GRANTED;
		fork[a]!REL, i;
		fork[b]!REL, i;
		k++
	:: else -> break
	od
}

init {
	atomic {
		run forksrv(0); run forksrv(1); run forksrv(2);
		run phil(0); run phil(1); run phil(2)
	}
}

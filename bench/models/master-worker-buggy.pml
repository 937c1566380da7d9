/* master and workers, the buggy twin: twin of master-worker-buggy.toml.
 * spin -DNJOBS=4 -DNW=1 -DCAP=1 -a master-worker-buggy.pml
 * Deadlocks (invalid end state) when NJOBS > 2 * CAP + NW. */
#ifndef NJOBS
#define NJOBS 4
#endif
#ifndef NW
#define NW 1
#endif
#ifndef CAP
#define CAP 1
#endif

mtype = { JOB, STOP, RESULT };

chan jobs = [CAP] of { mtype, int };
chan results = [CAP] of { mtype, int, int };

active proctype master() {
	int next = 0;
	int done = 0;
	int j, r;
	int w = 0;
	do
	:: next < NJOBS -> jobs!JOB, next; next++
	:: else -> break
	od;
	do
	:: done < NJOBS -> results?RESULT, j, r; assert(r == j * j); done++
	:: else -> break
	od;
	do
	:: w < NW -> jobs!STOP, 0; w++
	:: else -> break
	od
}

active [NW] proctype worker() {
	mtype op;
	int j;
	do
	:: jobs?op, j ->
		if
		:: op == STOP -> break
		:: else -> results!RESULT, j, j * j
		fi
	od
}

/* master and workers with select: twin of master-worker.toml.
 * spin -DNJOBS=2 -DNW=2 -DCAP=2 -a master-worker.pml
 * The scenario's `select` takes the first arm that can proceed, in the
 * order written: the master sends a job when one is left and `jobs` has
 * room, otherwise takes a result if one is there, otherwise waits for
 * whichever comes first (room in `jobs` or a result). */
#ifndef NJOBS
#define NJOBS 2
#endif
#ifndef NW
#define NW 2
#endif
#ifndef CAP
#define CAP 2
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
	:: done == NJOBS -> break
	:: done < NJOBS && next < NJOBS && len(jobs) < CAP ->
		jobs!JOB, next; next++
	:: done < NJOBS && (next >= NJOBS || len(jobs) >= CAP) && len(results) > 0 ->
		results?RESULT, j, r;
		assert(r == j * j);
		done++
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

/*
 * mpiiobench is the MPI-IO baseline of the checkpoint benchmarks: every
 * rank writes its state into one new shared file with
 * MPI_File_write_at_all at offset rank * size, then MPI_File_sync, and
 * rank 0 renames the file over the previous checkpoint (so that one stays
 * whole until the new one is durable); full, then the two incremental
 * steps (each rewrites everything), then a read-back with
 * MPI_File_read_at_all.
 *
 *   mpicc -O2 -ffp-contract=off -o bin/mpiiobench bench/mpiiobench/mpiiobench.c
 *   mpirun -np 4 bin/mpiiobench --size 67108864 --file /tmp/shared.dat [--drop-caches]
 *
 * The state is the one of bench/internal/workload (Go), reproduced bit for
 * bit: the same splitmix64 words and individually rounded double
 * operations. Rank 0 prints progress and one RESULT line of JSON; times
 * are of the slowest rank (a Barrier before, an Allreduce(MAX) after).
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>

#define PIECE_SIZE (64 << 10)
#define PIECE_ELEMS (PIECE_SIZE / 8)
#define PERIOD (1 << 20)
#define MAX_CALL (1 << 30) /* bytes per MPI call: counts are C ints */

static const double fractions[] = {1, 0.10, 0.01};
static const char *step_names[] = {"full", "incr10", "incr1"};

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t u) { return (double)(u >> 11) * (1.0 / 9007199254740992.0); }

static uint64_t rank_seed(uint64_t seed, int rank) {
    return mix(seed ^ ((uint64_t)rank + 1) * 0x9e3779b97f4a7c15ULL);
}

static void fill(double *f, size_t n, int rank, uint64_t seed) {
    uint64_t s = rank_seed(seed, rank), off = (uint64_t)rank * 7919;
    for (size_t k = 0; k < n; k++) {
        double t = (double)((k + off) % PERIOD) / (double)PERIOD;
        double smooth = 300.0 + 200.0 * (t * (1 - t));
        double noise = (unit(mix(s + k)) - 0.5) * 1e-3;
        f[k] = smooth + noise;
    }
}

/* change applies step to f (see workload.Change) and returns the pieces changed. */
static size_t change(double *f, size_t n, int rank, int step, uint64_t seed) {
    size_t pieces = n / PIECE_ELEMS;
    if (pieces == 0 || step <= 0 || step > 2) return 0;
    size_t cnt = (size_t)(fractions[step] * (double)pieces + 0.5);
    if (cnt < 1) cnt = 1;
    if (cnt > pieces) cnt = pieces;
    uint32_t *perm = malloc(pieces * sizeof *perm);
    if (!perm) return 0;
    for (size_t i = 0; i < pieces; i++) perm[i] = (uint32_t)i;
    uint64_t state = mix(rank_seed(seed, rank) ^ (uint64_t)step * 0xd1b54a32d192ed03ULL);
    for (size_t i = 0; i < cnt; i++) {
        state += 0x9e3779b97f4a7c15ULL;
        size_t j = i + (size_t)(mix(state) % (uint64_t)(pieces - i));
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    uint64_t s = mix(rank_seed(seed, rank) + (uint64_t)step * 0x632be59bd9b4e019ULL);
    for (size_t i = 0; i < cnt; i++) {
        size_t base = (size_t)perm[i] * PIECE_ELEMS;
        for (size_t k = base; k < base + PIECE_ELEMS; k++) f[k] += (unit(mix(s + k)) - 0.5) * 1e-2;
    }
    free(perm);
    return cnt;
}

static uint64_t checksum(const double *f, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL, w;
    for (size_t k = 0; k < n; k++) {
        memcpy(&w, &f[k], 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return h;
}

static long peak_kib(void) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    if (!fp) return 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    fclose(fp);
    return v;
}

static int drop_caches(void) {
    sync();
    FILE *fp = fopen("/proc/sys/vm/drop_caches", "w");
    if (!fp) return 0;
    int ok = fputs("3", fp) >= 0;
    return fclose(fp) == 0 && ok;
}

/* publish renames tmp over path and fsyncs the directory; 0 on success. */
static int publish(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) return -1;
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void die(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "mpiiobench: %s: %s\n", what, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

#define CHECK(call, what)                          \
    do {                                           \
        int rc_ = (call);                          \
        if (rc_ != MPI_SUCCESS) die(rc_, (what));  \
    } while (0)

/* io writes or reads size bytes at off with collective calls of at most
 * MAX_CALL bytes; every rank makes the same number of calls. */
static void io(MPI_File fh, int writing, MPI_Offset off, char *buf, long long size) {
    for (long long done = 0; done < size; done += MAX_CALL) {
        int n = (int)(size - done < MAX_CALL ? size - done : MAX_CALL);
        if (writing)
            CHECK(MPI_File_write_at_all(fh, off + done, buf + done, n, MPI_BYTE, MPI_STATUS_IGNORE), "MPI_File_write_at_all");
        else
            CHECK(MPI_File_read_at_all(fh, off + done, buf + done, n, MPI_BYTE, MPI_STATUS_IGNORE), "MPI_File_read_at_all");
    }
}

int main(int argc, char **argv) {
    long long size = 64LL << 20;
    const char *path = NULL;
    uint64_t seed = 1;
    int drop = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--file") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--drop-caches")) drop = 1;
        else {
            fprintf(stderr, "usage: mpiiobench --size BYTES --file PATH [--seed N] [--drop-caches]\n");
            return 2;
        }
    }
    MPI_Init(&argc, &argv);
    int rank, nranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_File_set_errhandler(MPI_FILE_NULL, MPI_ERRORS_RETURN);
    if (!path || size <= 0 || size % PIECE_SIZE) {
        if (rank == 0) fprintf(stderr, "mpiiobench: want --file and a --size that is a positive multiple of 65536\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    size_t n = (size_t)size / 8;
    double *f = malloc((size_t)size);
    if (!f) {
        fprintf(stderr, "mpiiobench: rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    fill(f, n, rank, seed);
    MPI_Offset off = (MPI_Offset)rank * size;
    long long total = size * nranks;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    double times[3];
    size_t pieces[3] = {n / PIECE_ELEMS, 0, 0};
    uint64_t sum0 = checksum(f, n), sum_last = sum0;
    for (int step = 0; step < 3; step++) {
        if (step > 0) pieces[step] = change(f, n, rank, step, seed);
        sum_last = checksum(f, n);
        if (rank == 0) sync();
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_File fh;
        CHECK(MPI_File_open(MPI_COMM_WORLD, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh), "MPI_File_open");
        io(fh, 1, off, (char *)f, size);
        CHECK(MPI_File_sync(fh), "MPI_File_sync");
        CHECK(MPI_File_close(&fh), "MPI_File_close");
        int bad = 0;
        if (rank == 0 && publish(tmp, path) != 0) bad = 1;
        MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (bad) {
            if (rank == 0) perror("mpiiobench: renaming the new file into place");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double took = MPI_Wtime() - t0;
        MPI_Allreduce(&took, &times[step], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rank == 0)
            printf("mpiiobench: %s: %.1f MiB written and synced by %d ranks in %.2fs (%.0f MB/s)\n", step_names[step],
                   total / 1048576.0, nranks, times[step], total / times[step] / 1e6), fflush(stdout);
    }
    int dropped = 0;
    if (rank == 0 && drop) dropped = drop_caches();
    memset(f, 0, (size_t)size);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), took, read_s;
    MPI_File fh;
    CHECK(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh), "MPI_File_open");
    io(fh, 0, off, (char *)f, size);
    CHECK(MPI_File_close(&fh), "MPI_File_close");
    took = MPI_Wtime() - t0;
    MPI_Allreduce(&took, &read_s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    int bad = checksum(f, n) != sum_last, anybad = 0;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    long peak = peak_kib(), maxpeak = 0;
    MPI_Allreduce(&peak, &maxpeak, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    unsigned long long s0 = sum0, *sums = malloc(sizeof *sums * (size_t)nranks);
    MPI_Gather(&s0, 1, MPI_UNSIGNED_LONG_LONG, sums, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("mpiiobench: read back %.1f MiB in %.2fs (page cache dropped: %s, data matches: %s)\n", total / 1048576.0,
               read_s, dropped ? "true" : "false", anybad ? "false" : "true");
        printf("RESULT {\"steps\":[");
        for (int s = 0; s < 3; s++)
            printf("%s{\"name\":\"%s\",\"blocked_s\":%.6f,\"durable_s\":%.6f,\"logical_bytes\":%lld,\"written_bytes\":%lld,\"pieces_changed\":%zu}",
                   s ? "," : "", step_names[s], times[s], times[s], total, total, pieces[s]);
        printf("],\"read\":{\"of\":\"incr1\",\"read_s\":%.6f,\"bytes\":%lld,\"page_cache_dropped\":%s,\"data_matches\":%s},",
               read_s, total, dropped ? "true" : "false", anybad ? "false" : "true");
        printf("\"memory\":{\"peak_rss_kib\":%ld},\"checksums\":[", maxpeak);
        for (int r = 0; r < nranks; r++) printf("%s\"%016llx\"", r ? "," : "", sums[r]);
        printf("]}\n");
        fflush(stdout);
    }
    free(sums);
    free(f);
    MPI_Finalize();
    return 0;
}

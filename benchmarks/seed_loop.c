/* Seed 000's training loop in plain C (float64): the compiled-code limit for workload (a).

   The same pass as benchmarks/seed_numpy.py (tanh hidden layer, softmax output, summed
   gradients, L2 term, W += -epsilon * dW), with every array in a fixed-size buffer and no
   allocation in the loop. Reads from stdin: int32 n, d, h, k, passes; float64 epsilon, reg;
   float64 X (n*d), int32 y (n), float64 W1 (d*h), b1 (h), W2 (h*k), b2 (k), all row-major.
   Prints the loop's wall time in seconds, then W1, b1, W2, b2 after the last pass (so the caller
   can check it computed the same thing as NumPy).

   cc -O3 -march=native -ffast-math -o seed_loop seed_loop.c -lm   (benchmarks/seed000.py does
   this; -ffast-math lets tanh and exp use the C library's vector versions) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *must_read(size_t size, size_t count) {
    void *buf = malloc(size * (count ? count : 1));
    if (!buf || fread(buf, size, count, stdin) != count) {
        fprintf(stderr, "seed_loop: short input\n");
        exit(2);
    }
    return buf;
}

int main(void) {
    int *head = must_read(sizeof(int), 5);
    int n = head[0], d = head[1], h = head[2], k = head[3], passes = head[4];
    double *rates = must_read(sizeof(double), 2);
    double epsilon = rates[0], reg = rates[1];
    double *X = must_read(sizeof(double), (size_t)n * d);
    int *y = must_read(sizeof(int), n);
    double *W1 = must_read(sizeof(double), (size_t)d * h), *b1 = must_read(sizeof(double), h);
    double *W2 = must_read(sizeof(double), (size_t)h * k), *b2 = must_read(sizeof(double), k);
    double *a1 = malloc(sizeof(double) * n * h), *p = malloc(sizeof(double) * n * k);
    double *dW1 = malloc(sizeof(double) * d * h), *db1 = malloc(sizeof(double) * h);
    double *dW2 = malloc(sizeof(double) * h * k), *db2 = malloc(sizeof(double) * k);
    double *d2 = malloc(sizeof(double) * h);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int pass = 0; pass < passes; pass++) {
        for (int j = 0; j < d * h; j++) dW1[j] = reg * W1[j];
        for (int j = 0; j < h * k; j++) dW2[j] = reg * W2[j];
        for (int j = 0; j < h; j++) db1[j] = 0.0;
        for (int j = 0; j < k; j++) db2[j] = 0.0;
        /* forward, layer by layer so that tanh and exp run as vector loops */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < h; j++) {
                double z = b1[j];
                for (int c = 0; c < d; c++) z += X[(size_t)i * d + c] * W1[c * h + j];
                a1[(size_t)i * h + j] = z;
            }
        for (size_t t = 0; t < (size_t)n * h; t++) a1[t] = tanh(a1[t]);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < k; c++) {
                double z = b2[c];
                for (int j = 0; j < h; j++) z += a1[(size_t)i * h + j] * W2[j * k + c];
                p[(size_t)i * k + c] = z;
            }
        for (size_t t = 0; t < (size_t)n * k; t++) p[t] = exp(p[t]);
        /* backward, sample by sample */
        for (int i = 0; i < n; i++) {
            const double *x = X + (size_t)i * d, *a = a1 + (size_t)i * h;
            double *q = p + (size_t)i * k, sum = 0.0;
            for (int c = 0; c < k; c++) sum += q[c];
            for (int c = 0; c < k; c++) q[c] /= sum;
            q[y[i]] -= 1.0; /* delta3 */
            for (int j = 0; j < h; j++) {
                double back = 0.0;
                for (int c = 0; c < k; c++) {
                    dW2[j * k + c] += a[j] * q[c];
                    back += q[c] * W2[j * k + c];
                }
                d2[j] = back * (1.0 - a[j] * a[j]); /* delta2 */
                db1[j] += d2[j];
            }
            for (int c = 0; c < k; c++) db2[c] += q[c];
            for (int c = 0; c < d; c++)
                for (int j = 0; j < h; j++) dW1[c * h + j] += x[c] * d2[j];
        }
        for (int j = 0; j < d * h; j++) W1[j] += -epsilon * dW1[j];
        for (int j = 0; j < h; j++) b1[j] += -epsilon * db1[j];
        for (int j = 0; j < h * k; j++) W2[j] += -epsilon * dW2[j];
        for (int j = 0; j < k; j++) b2[j] += -epsilon * db2[j];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.9f\n", (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec));
    for (int j = 0; j < d * h; j++) printf("%.17g\n", W1[j]);
    for (int j = 0; j < h; j++) printf("%.17g\n", b1[j]);
    for (int j = 0; j < h * k; j++) printf("%.17g\n", W2[j]);
    for (int j = 0; j < k; j++) printf("%.17g\n", b2[j]);
    return 0;
}

/*
 * The polyphase FIR of switchboard.audio.fir in C: one piece of PCM16 through a rational-ratio
 * resampler (up by L, down by M), the filter's input history and grid position kept by the
 * caller.
 *
 * An optional accelerator, like _g711.c: the numpy path costs ~12 numpy calls per 20 ms piece
 * (their fixed per-call cost is most of its time at 160-960 samples), and every call on the
 * PCM path resamples both ways. Both paths compute each output as a sum of float64 products of
 * the same coefficients and input samples and round it half-to-even (np.rint, nearbyint), so
 * they agree to the last bit unless a sum lies within ~1e-11 of a half; tests compare them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *audio_error; /* switchboard.errors.AudioError */

static inline int16_t load16(const char *p) { /* little-endian int16 */
    const uint8_t *b = (const uint8_t *)p;
    return (int16_t)(uint16_t)(b[0] | (b[1] << 8));
}

static inline void store16(char *p, double v) {
    v = nearbyint(v); /* the default rounding mode: half to even, as np.rint */
    if (v > 32767.0) v = 32767.0;
    if (v < -32768.0) v = -32768.0;
    uint16_t u = (uint16_t)(int16_t)v;
    p[0] = (char)(u & 0xFF);
    p[1] = (char)(u >> 8);
}

/* sum of taps[k] * x[k], k < n: four running sums (a fixed order; see the header comment).
 * GCC vector extensions (v4d) measured slower here: without AVX they become SSE pairs. */
static inline double dot(const double *taps, const double *x, Py_ssize_t n) {
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    Py_ssize_t k = 0;
    for (; k + 4 <= n; k += 4) {
        a0 += taps[k] * x[k];
        a1 += taps[k + 1] * x[k + 1];
        a2 += taps[k + 2] * x[k + 2];
        a3 += taps[k + 3] * x[k + 3];
    }
    for (; k < n; k++) a0 += taps[k] * x[k];
    return (a0 + a1) + (a2 + a3);
}

/*
 * polyphase(pcm, history, taps, up, down, pos) -> (bytes, pos)
 *
 * Up by L and down by M (L/M in lowest terms; either may be 1). pcm: the piece, PCM16 LE
 * (n samples). history: a bytearray of the T - 1 input samples before it (PCM16 LE), replaced
 * in place by the last T - 1 of history + pcm. taps: float64, the L phases of the filter each
 * reversed, phase p at [p*T, (p+1)*T). Output k of this piece sits at v = pos + k*M on the
 * L-times-denser grid: it is taps[v % L] . (history + pcm)[v / L : v / L + T], for every v
 * below n*L; the returned pos (pos + K*M - n*L, in [0, M)) carries the grid into the next
 * piece, so chunking never changes the output.
 */
static PyObject *polyphase(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer pcm, hist, taps;
    Py_ssize_t up, down, pos;
    if (!PyArg_ParseTuple(args, "y*w*y*nnn", &pcm, &hist, &taps, &up, &down, &pos)) return NULL;
    PyObject *out = NULL, *result = NULL;
    double *buf = NULL;
    Py_ssize_t t = hist.len / 2 + 1; /* taps per phase */
    Py_ssize_t n = pcm.len / 2;
    if (pcm.len % 2 || hist.len % 2 || up < 1 || down < 1 || pos < 0 || pos >= down + up ||
        taps.len != (Py_ssize_t)sizeof(double) * up * t) {
        PyErr_SetString(audio_error, "polyphase: inconsistent arguments");
        goto done;
    }
    Py_ssize_t outs = n * up > pos ? (n * up - pos + down - 1) / down : 0;
    out = PyBytes_FromStringAndSize(NULL, outs * 2);
    if (out == NULL) goto done;
    if (n > 0) {
        buf = (double *)malloc(sizeof(double) * (size_t)(t - 1 + n));
        if (buf == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        const char *h = (const char *)hist.buf, *x = (const char *)pcm.buf;
        for (Py_ssize_t i = 0; i < t - 1; i++) buf[i] = load16(h + 2 * i);
        for (Py_ssize_t i = 0; i < n; i++) buf[t - 1 + i] = load16(x + 2 * i);
        const double *coef = (const double *)taps.buf;
        char *dst = PyBytes_AS_STRING(out);
        for (Py_ssize_t k = 0, v = pos; k < outs; k++, v += down)
            store16(dst + 2 * k, dot(coef + (v % up) * t, buf + v / up, t));
        /* the new history: the last t - 1 samples of history + pcm */
        char *hw = (char *)hist.buf;
        if (n >= t - 1) {
            memcpy(hw, x + 2 * (n - (t - 1)), (size_t)(2 * (t - 1)));
        } else {
            memmove(hw, hw + 2 * n, (size_t)(2 * (t - 1 - n)));
            memcpy(hw + 2 * (t - 1 - n), x, (size_t)(2 * n));
        }
    }
    result = Py_BuildValue("On", out, pos + outs * down - n * up);
done:
    Py_XDECREF(out);
    free(buf);
    PyBuffer_Release(&pcm);
    PyBuffer_Release(&hist);
    PyBuffer_Release(&taps);
    return result;
}

static PyMethodDef methods[] = {
    {"polyphase", polyphase, METH_VARARGS, "One PCM16 piece through a polyphase FIR (up L, down M)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fir", "The rational-ratio polyphase FIR resampler in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fir(void) {
    PyObject *errors = PyImport_ImportModule("switchboard.errors");
    if (errors == NULL) return NULL;
    audio_error = PyObject_GetAttrString(errors, "AudioError");
    Py_DECREF(errors);
    if (audio_error == NULL) return NULL;
    return PyModule_Create(&module);
}

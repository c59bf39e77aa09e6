/* Optional C accelerator for the header reader's fast path (reader._FastParser).
 *
 * scan() reads top-level data elements (with their sequences and items, to any allowed depth)
 * exactly as _FastParser.explicit() / _FastParser.implicit() do: the same records in the same
 * order, the same requests to the buffer (buf.need(n) with the same n at the same points),
 * the same private creators and the same signed-pixel state. It only does the common case:
 * on anything else (every place where the Python loop raises _Fallback, asks the buffer for
 * bytes it does not get, ends the stream, or runs out of its element budget) it drops the
 * records of the top-level element it was in and returns that element's start, and the
 * Python loop reads on from there (so what it does there is exactly what it does without
 * this module). At the top-level pixel data element it returns the pixel record, as the
 * Python loop does.
 *
 * Every read is bounds-checked against the current buffer (a bytes object from buf.data,
 * fetched again after every buf.need() call).
 *
 * meta() does the same for the file meta group (reader._fast_meta), which stays the
 * reference (tests compare the two).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define UNDEFINED_LENGTH 0xFFFFFFFFLL
#define MAX_DEPTH 64
#define NO_END ((long long)1 << 62)

#define MODE_IMPLICIT 0
#define MODE_EXPLICIT_LE 1
#define MODE_EXPLICIT_BE 2

/* results of the internal steps */
#define ST_ERROR (-1)
#define ST_OK 0
#define ST_HANDOVER 1
#define ST_PIXEL 2

static const char *const VR_NAMES[] = {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
    "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
    "UR", "US", "UT", "UV"};
#define N_VRS ((int)(sizeof(VR_NAMES) / sizeof(VR_NAMES[0])))
/* VRs with a reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2) */
static const char *const LONG_VR_NAMES[] = {
    "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"};

static PyObject *vr_str[N_VRS];
static unsigned char vr_long[N_VRS];
/* (c0 - 'A') * 26 + (c1 - 'A') -> VR index + 1, 0 when not a VR */
static unsigned char vr_table[26 * 26];
static int vr_sq, vr_un, vr_us, vr_ss, vr_ob, vr_ow;
static PyObject *str_need, *str_data, *str_us_or_ss;

typedef struct {
    PyObject *buf;      /* reader._Buffer */
    PyObject *data;     /* buf.data (strong reference) */
    const unsigned char *p;
    long long size;
    PyObject *elements; /* list of raw records */
    Py_ssize_t max_elements;
    int mode;
    int signed_pixels;
    PyObject *plain_vrs; /* tag -> VR without the "US or SS" entries */
    PyObject *all_vrs;   /* tag -> VR */
    PyObject *fallback;  /* implicit_vr_fallback */
    long long here;      /* start of the top-level element being read */
    Py_ssize_t n0;       /* records before it */
    PyObject *pixel;     /* the pixel record, when found */
    long long stop;
} Ctx;

static int
refresh(Ctx *c)
{
    PyObject *data = PyObject_GetAttr(c->buf, str_data);
    if (data == NULL)
        return -1;
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "buffer data must be bytes");
        return -1;
    }
    Py_XSETREF(c->data, data);
    c->p = (const unsigned char *)PyBytes_AS_STRING(data);
    c->size = (long long)PyBytes_GET_SIZE(data);
    return 0;
}

/* buf.need(end): 1 when the bytes are there, 0 when not, -1 on an exception */
static int
need(Ctx *c, long long end)
{
    PyObject *n = PyLong_FromLongLong(end);
    if (n == NULL)
        return -1;
    PyObject *r = PyObject_CallMethodOneArg(c->buf, str_need, n);
    Py_DECREF(n);
    if (r == NULL)
        return -1;
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (ok < 0)
        return -1;
    if (refresh(c) < 0)
        return -1;
    return ok;
}

static inline unsigned int
u16(const unsigned char *q, int big)
{
    return big ? ((unsigned int)q[0] << 8 | q[1]) : ((unsigned int)q[1] << 8 | q[0]);
}

static inline long long
u32(const unsigned char *q, int big)
{
    uint32_t v = big ? ((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3])
                     : ((uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0]);
    return (long long)v;
}

static inline int
vr_index(unsigned char a, unsigned char b)
{
    if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z')
        return -1;
    return (int)vr_table[(a - 'A') * 26 + (b - 'A')] - 1;
}

static inline int
is_pixel_tag(unsigned long tag)
{
    return tag == 0x7FE00010UL || tag == 0x7FE00008UL || tag == 0x7FE00009UL;
}

/* append (path, tag, vr, start, stop, length, creator); steals nothing */
static int
append_record(Ctx *c, PyObject *path, PyObject *tag, PyObject *vr, long long start,
              long long stop, long long length, PyObject *creator)
{
    PyObject *t = PyTuple_New(7);
    if (t == NULL)
        return -1;
    PyObject *a = PyLong_FromLongLong(start);
    PyObject *b = (stop == start) ? (Py_XNewRef(a)) : PyLong_FromLongLong(stop);
    PyObject *n = PyLong_FromLongLong(length);
    if (a == NULL || b == NULL || n == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_XDECREF(n);
        Py_DECREF(t);
        return -1;
    }
    PyTuple_SET_ITEM(t, 0, Py_NewRef(path));
    PyTuple_SET_ITEM(t, 1, Py_NewRef(tag));
    PyTuple_SET_ITEM(t, 2, Py_NewRef(vr));
    PyTuple_SET_ITEM(t, 3, a);
    PyTuple_SET_ITEM(t, 4, b);
    PyTuple_SET_ITEM(t, 5, n);
    PyTuple_SET_ITEM(t, 6, Py_NewRef(creator ? creator : Py_None));
    int r = PyList_Append(c->elements, t);
    Py_DECREF(t);
    return r;
}

/* creators.get(group << 8 | elem >> 8) as a borrowed reference (NULL: None); -1 on error */
static int
creator_of(PyObject *creators, unsigned int group, unsigned int elem, PyObject **out)
{
    *out = NULL;
    if (creators == NULL || PyDict_GET_SIZE(creators) == 0)
        return 0;
    PyObject *key = PyLong_FromUnsignedLong((unsigned long)group << 8 | elem >> 8);
    if (key == NULL)
        return -1;
    PyObject *v = PyDict_GetItemWithError(creators, key);
    Py_DECREF(key);
    if (v == NULL && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* creators[group << 8 | elem] = value as latin-1, stripped of spaces and NULs at both ends */
static int
set_creator(PyObject **creators, unsigned int group, unsigned int elem, const unsigned char *q,
            long long n)
{
    if (*creators == NULL) {
        *creators = PyDict_New();
        if (*creators == NULL)
            return -1;
    }
    long long i = 0, j = n;
    while (i < j && (q[i] == ' ' || q[i] == 0))
        i++;
    while (j > i && (q[j - 1] == ' ' || q[j - 1] == 0))
        j--;
    PyObject *name = PyUnicode_DecodeLatin1((const char *)q + i, (Py_ssize_t)(j - i), NULL);
    if (name == NULL)
        return -1;
    PyObject *key = PyLong_FromUnsignedLong((unsigned long)group << 8 | elem);
    if (key == NULL) {
        Py_DECREF(name);
        return -1;
    }
    int r = PyDict_SetItem(*creators, key, name);
    Py_DECREF(key);
    Py_DECREF(name);
    return r;
}

static int str_is(PyObject *s, int vr)
{
    if (s == vr_str[vr])
        return 1;
    if (!PyUnicode_Check(s))
        return 0;
    return PyUnicode_Compare(s, vr_str[vr]) == 0;
}

static int dataset(Ctx *c, long long pos, long long end, PyObject *path, int depth, int kind,
                   PyObject **creators, long long *out);

/* The items of a sequence (end < 0: to its delimiter); *out: the position after it. */
static int
sequence(Ctx *c, long long pos, long long end, PyObject *path, PyObject *tag, int depth,
         long long *out)
{
    if (depth > MAX_DEPTH)
        return ST_HANDOVER;
    int big = c->mode == MODE_EXPLICIT_BE;
    long index = 0;
    for (;;) {
        if (end >= 0 && pos >= end) {
            if (pos > end)
                return ST_HANDOVER;
            *out = pos;
            return ST_OK;
        }
        if (pos + 8 > c->size) {
            int r = need(c, pos + 8);
            if (r < 0)
                return ST_ERROR;
            if (r == 0 || pos + 8 > c->size)
                return ST_HANDOVER;
        }
        const unsigned char *q = c->p + pos;
        unsigned int group = u16(q, big), elem = u16(q + 2, big);
        long long length = u32(q + 4, big);
        if (group != 0xFFFE)
            return ST_HANDOVER;
        if (elem == 0xE000) {
            Py_ssize_t plen = PyTuple_GET_SIZE(path);
            PyObject *sub = PyTuple_New(plen + 1);
            if (sub == NULL)
                return ST_ERROR;
            for (Py_ssize_t i = 0; i < plen; i++)
                PyTuple_SET_ITEM(sub, i, Py_NewRef(PyTuple_GET_ITEM(path, i)));
            PyObject *idx = PyLong_FromLong(index);
            PyObject *step = idx ? PyTuple_Pack(2, tag, idx) : NULL;
            Py_XDECREF(idx);
            if (step == NULL) {
                Py_DECREF(sub);
                return ST_ERROR;
            }
            PyTuple_SET_ITEM(sub, plen, step);
            PyObject *creators = NULL;
            int r;
            if (length == UNDEFINED_LENGTH) {
                r = dataset(c, pos + 8, end, sub, depth, 2, &creators, &pos);
            }
            else {
                long long stop = pos + 8 + length;
                if (end >= 0 && stop > end) {
                    r = ST_HANDOVER;
                }
                else {
                    long long ignored;
                    r = dataset(c, pos + 8, stop, sub, depth, 1, &creators, &ignored);
                    pos = stop;
                }
            }
            Py_XDECREF(creators);
            Py_DECREF(sub);
            if (r != ST_OK)
                return r;
            index++;
        }
        else if (elem == 0xE0DD && end < 0) {
            *out = pos + 8;
            return ST_OK;
        }
        else {
            return ST_HANDOVER;
        }
    }
}

/* A data set from pos: kind 0 top level (to the pixel data), 1 defined-length item (to end),
 * 2 undefined-length item (to its delimiter, never past end when end >= 0). *creators: the
 * private creators of this level (a dict, or NULL until one is read). */
static int
dataset(Ctx *c, long long pos, long long end, PyObject *path, int depth, int kind,
        PyObject **creators, long long *out)
{
    const int implicit = c->mode == MODE_IMPLICIT;
    const int big = c->mode == MODE_EXPLICIT_BE;
    const long long lim = end < 0 ? NO_END : end;
    for (;;) {
        if (kind == 0) {
            c->here = pos;
            c->n0 = PyList_GET_SIZE(c->elements);
        }
        if (pos >= lim) {
            if (pos > lim || kind == 2)
                return ST_HANDOVER;
            *out = pos;
            return ST_OK;
        }
        if (pos + 12 > c->size) {
            int r = need(c, pos + 12);
            if (r < 0)
                return ST_ERROR;
            if (r == 0 || pos + 12 > c->size)
                return ST_HANDOVER; /* the Python loop decides (end of stream, a short tail) */
        }
        if (PyList_GET_SIZE(c->elements) >= c->max_elements)
            return ST_HANDOVER;
        const unsigned char *q = c->p + pos;
        unsigned int group = u16(q, big), elem = u16(q + 2, big);
        unsigned long utag = (unsigned long)group << 16 | elem;
        long long length, start;
        PyObject *vr = NULL; /* borrowed, or owned when vr_owned */
        int vr_owned = 0, is_sq = 0;
        if (implicit)
            length = u32(q + 4, 0);
        else
            length = u16(q + 6, big);
        if (group >= 0x7FE0) {
            if (group == 0xFFFE) {
                if (elem == 0xE00D && kind == 2) {
                    *out = pos + 8;
                    return ST_OK;
                }
                return ST_HANDOVER;
            }
            if (kind == 0 && is_pixel_tag(utag)) {
                PyObject *tag = PyLong_FromUnsignedLong(utag);
                if (tag == NULL)
                    return ST_ERROR;
                PyObject *pvr;
                long long plen, pstart;
                if (implicit) {
                    pvr = vr_str[vr_ow];
                    if (utag != 0x7FE00010UL) {
                        PyObject *found = PyDict_GetItemWithError(c->all_vrs, tag);
                        if (found == NULL && PyErr_Occurred()) {
                            Py_DECREF(tag);
                            return ST_ERROR;
                        }
                        if (found != NULL)
                            pvr = found;
                    }
                    pstart = pos + 8;
                    plen = length;
                }
                else {
                    int vi = vr_index(q[4], q[5]);
                    pvr = vr_str[vi >= 0 ? vi : vr_ob];
                    pstart = pos + 12;
                    plen = u32(q + 8, big);
                }
                c->pixel = Py_BuildValue("(NOLL)", tag, pvr, pstart, plen);
                if (c->pixel == NULL)
                    return ST_ERROR;
                c->stop = pstart;
                return ST_PIXEL;
            }
        }
        PyObject *tag = PyLong_FromUnsignedLong(utag);
        if (tag == NULL)
            return ST_ERROR;
        if (implicit) {
            vr = PyDict_GetItemWithError(c->plain_vrs, tag);
            if (vr == NULL) {
                if (PyErr_Occurred())
                    goto error;
                vr = PyDict_GetItemWithError(c->all_vrs, tag);
                if (vr == NULL) {
                    if (PyErr_Occurred())
                        goto error;
                    vr = PyObject_CallOneArg(c->fallback, tag);
                    if (vr == NULL)
                        goto error;
                    vr_owned = 1;
                }
                else if (vr == str_us_or_ss ||
                         (PyUnicode_Check(vr) && PyUnicode_Compare(vr, str_us_or_ss) == 0)) {
                    vr = vr_str[c->signed_pixels ? vr_ss : vr_us];
                }
            }
            start = pos + 8;
            is_sq = str_is(vr, vr_sq);
            if (is_sq || length == UNDEFINED_LENGTH) {
                if (length == UNDEFINED_LENGTH) {
                    if (!is_sq && !str_is(vr, vr_un))
                        goto handover;
                    if (vr_owned)
                        Py_DECREF(vr);
                    vr_owned = 0;
                    vr = vr_str[vr_sq];
                }
                is_sq = 1;
            }
        }
        else {
            int vi = vr_index(q[4], q[5]);
            if (vi < 0)
                goto handover;
            vr = vr_str[vi];
            if (!vr_long[vi]) {
                start = pos + 8;
            }
            else {
                length = u32(q + 8, big);
                start = pos + 12;
                if (vi == vr_sq)
                    is_sq = 1;
                else if (length == UNDEFINED_LENGTH)
                    goto handover;
            }
        }
        if (is_sq) {
            PyObject *creator = NULL;
            if ((group & 1) && elem >= 0x1000 && creator_of(*creators, group, elem, &creator) < 0)
                goto error;
            if (append_record(c, path, tag, vr, start, start, length, creator) < 0)
                goto error;
            int r;
            if (length == UNDEFINED_LENGTH) {
                r = sequence(c, start, end, path, tag, depth + 1, &pos);
            }
            else {
                long long stop = start + length;
                if (stop > lim)
                    goto handover;
                long long ignored;
                r = sequence(c, start, stop, path, tag, depth + 1, &ignored);
                pos = stop;
            }
            if (vr_owned)
                Py_DECREF(vr);
            Py_DECREF(tag);
            if (r != ST_OK)
                return r;
            continue;
        }
        long long stop = start + length;
        if (stop > c->size || stop > lim) {
            if (stop > lim)
                goto handover;
            int r = need(c, stop);
            if (r < 0)
                goto error;
            if (r == 0 || stop > c->size)
                goto handover;
        }
        {
            PyObject *creator = NULL;
            if (group & 1) {
                if (elem >= 0x1000) {
                    if (creator_of(*creators, group, elem, &creator) < 0)
                        goto error;
                    if (append_record(c, path, tag, vr, start, stop, length, creator) < 0)
                        goto error;
                }
                else {
                    if (append_record(c, path, tag, vr, start, stop, length, NULL) < 0)
                        goto error;
                    if (elem >= 0x0010 && elem <= 0x00FF &&
                        set_creator(creators, group, elem, c->p + start, stop - start) < 0)
                        goto error;
                }
            }
            else {
                if (append_record(c, path, tag, vr, start, stop, length, NULL) < 0)
                    goto error;
                if (implicit && utag == 0x00280103UL && kind == 0) {
                    const unsigned char *v = c->p + start;
                    /* the value's own first two bytes (never the next element's) */
                    c->signed_pixels = length >= 2 && start + 2 <= c->size &&
                                       ((v[0] == 1 && v[1] == 0) || (v[0] == 0 && v[1] == 1));
                }
            }
        }
        if (vr_owned)
            Py_DECREF(vr);
        Py_DECREF(tag);
        pos = stop;
        continue;
    handover:
        if (vr_owned)
            Py_DECREF(vr);
        Py_DECREF(tag);
        return ST_HANDOVER;
    error:
        if (vr_owned)
            Py_XDECREF(vr);
        Py_DECREF(tag);
        return ST_ERROR;
    }
}

PyDoc_STRVAR(scan_doc,
"scan(buf, pos, mode, elements, creators, max_elements, signed_pixels, path, plain_vrs,\n"
"     all_vrs, fallback) -> (pos, signed_pixels, pixel)\n\n"
"Read top-level elements from pos as reader._FastParser does, appending raw records to\n"
"elements and top-level private creators to creators. pixel is the pixel data record\n"
"(tag, vr, offset, length) when reached (pos is then the offset of its value); else None,\n"
"and pos is the start of the top-level element the Python loop must read on from.");

static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 11 arguments");
        return NULL;
    }
    Ctx c;
    memset(&c, 0, sizeof(c));
    c.buf = args[0];
    long long pos = PyLong_AsLongLong(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    long mode = PyLong_AsLong(args[2]);
    if (mode == -1 && PyErr_Occurred())
        return NULL;
    if (mode < MODE_IMPLICIT || mode > MODE_EXPLICIT_BE || pos < 0) {
        PyErr_SetString(PyExc_ValueError, "bad mode or position");
        return NULL;
    }
    c.mode = (int)mode;
    c.elements = args[3];
    PyObject *creators = args[4];
    if (!PyList_Check(c.elements) || !PyDict_Check(creators) || !PyTuple_Check(args[7]) ||
        !PyDict_Check(args[8]) || !PyDict_Check(args[9])) {
        PyErr_SetString(PyExc_TypeError, "scan(): bad argument types");
        return NULL;
    }
    c.max_elements = PyLong_AsSsize_t(args[5]);
    if (c.max_elements == -1 && PyErr_Occurred())
        return NULL;
    c.signed_pixels = PyObject_IsTrue(args[6]);
    if (c.signed_pixels < 0)
        return NULL;
    c.plain_vrs = args[8];
    c.all_vrs = args[9];
    c.fallback = args[10];
    {
        /* a buffer that is not bytes (no such _Buffer today): the Python loop reads it all */
        PyObject *data = PyObject_GetAttr(c.buf, str_data);
        if (data == NULL)
            return NULL;
        int is_bytes = PyBytes_Check(data);
        Py_DECREF(data);
        if (!is_bytes)
            return Py_BuildValue("(LOO)", pos, c.signed_pixels ? Py_True : Py_False, Py_None);
    }
    if (refresh(&c) < 0)
        return NULL;
    c.here = pos;
    c.n0 = PyList_GET_SIZE(c.elements);
    Py_INCREF(creators);
    PyObject *top_creators = creators;
    long long end_pos = pos;
    int r = dataset(&c, pos, -1, args[7], 0, 0, &top_creators, &end_pos);
    Py_XDECREF(top_creators);
    Py_XDECREF(c.data);
    if (r == ST_ERROR) {
        Py_XDECREF(c.pixel);
        return NULL;
    }
    if (r == ST_PIXEL)
        return Py_BuildValue("(LON)", c.stop, c.signed_pixels ? Py_True : Py_False, c.pixel);
    /* ST_HANDOVER (or ST_OK, which the top level never returns): drop the records of the
     * top-level element being read; the Python loop reads it again */
    if (PyList_GET_SIZE(c.elements) > c.n0 &&
        PyList_SetSlice(c.elements, c.n0, PyList_GET_SIZE(c.elements), NULL) < 0)
        return NULL;
    return Py_BuildValue("(LOO)", c.here, c.signed_pixels ? Py_True : Py_False, Py_None);
}

PyDoc_STRVAR(meta_doc,
"meta(data, pos, max_elements, element_type) -> (elements, records, pos) or None\n\n"
"The file meta group from pos as reader._fast_meta reads it: plain explicit VR little\n"
"endian elements of group 0002, all inside data. elements are element_type instances\n"
"(path, tag, vr, value, start, length, creator), records the raw records (path, tag, vr,\n"
"start, stop, length, creator); pos is where the data set starts. None where _fast_meta\n"
"gives None (an unknown VR, a sequence, data running out, more than max_elements).");

static PyObject *
meta(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "meta() takes 4 arguments");
        return NULL;
    }
    PyObject *data = args[0];
    PyObject *etype = args[3];
    if (!PyBytes_Check(data) || !PyType_Check(etype) ||
        !PyType_IsSubtype((PyTypeObject *)etype, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "meta(): bad argument types");
        return NULL;
    }
    long long pos = PyLong_AsLongLong(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t max_elements = PyLong_AsSsize_t(args[2]);
    if (max_elements == -1 && PyErr_Occurred())
        return NULL;
    if (pos < 0) {
        PyErr_SetString(PyExc_ValueError, "meta(): negative position");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
    long long size = (long long)PyBytes_GET_SIZE(data);
    PyObject *out = PyList_New(0);
    PyObject *raw = PyList_New(0);
    PyObject *empty = PyTuple_New(0);
    if (out == NULL || raw == NULL || empty == NULL)
        goto error;
    for (;;) {
        if (pos + 8 > size)
            goto none;
        const unsigned char *q = p + pos;
        unsigned int group = u16(q, 0), elem = u16(q + 2, 0);
        if (group != 0x0002) {
            PyObject *result = Py_BuildValue("(OOL)", out, raw, pos);
            Py_DECREF(out);
            Py_DECREF(raw);
            Py_DECREF(empty);
            return result;
        }
        if (PyList_GET_SIZE(out) >= max_elements)
            goto none;
        int vri = vr_index(q[4], q[5]);
        if (vri < 0)
            goto none;
        long long length, start;
        if (vr_long[vri]) {
            if (vri == vr_sq || pos + 12 > size)
                goto none;
            length = u32(q + 8, 0);
            start = pos + 12;
        } else {
            length = u16(q + 6, 0);
            start = pos + 8;
        }
        long long stop = start + length;
        if (stop > size)
            goto none;
        PyObject *fields = Py_BuildValue(
            "(OkOy#LLO)", empty, 0x00020000UL | elem, vr_str[vri], (const char *)(p + start),
            (Py_ssize_t)length, start, length, Py_None);
        if (fields == NULL)
            goto error;
        /* what tuple.__new__(etype, fields) does for a tuple subclass */
        PyObject *element = ((PyTypeObject *)etype)->tp_alloc((PyTypeObject *)etype, 7);
        if (element == NULL) {
            Py_DECREF(fields);
            goto error;
        }
        for (Py_ssize_t k = 0; k < 7; k++) {
            PyObject *field = PyTuple_GET_ITEM(fields, k);
            Py_INCREF(field);
            PyTuple_SET_ITEM(element, k, field);
        }
        Py_DECREF(fields);
        int failed = PyList_Append(out, element);
        Py_DECREF(element);
        if (failed < 0)
            goto error;
        PyObject *record = Py_BuildValue("(OkOLLLO)", empty, 0x00020000UL | elem, vr_str[vri],
                                         start, stop, length, Py_None);
        if (record == NULL)
            goto error;
        failed = PyList_Append(raw, record);
        Py_DECREF(record);
        if (failed < 0)
            goto error;
        pos = stop;
    }
none:
    Py_DECREF(out);
    Py_DECREF(raw);
    Py_DECREF(empty);
    Py_RETURN_NONE;
error:
    Py_XDECREF(out);
    Py_XDECREF(raw);
    Py_XDECREF(empty);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL, scan_doc},
    {"meta", (PyCFunction)(void (*)(void))meta, METH_FASTCALL, meta_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastscan",
    "C accelerator of dicomguard.dicomfile.reader's fast path (optional).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fastscan(void)
{
    memset(vr_table, 0, sizeof(vr_table));
    for (int i = 0; i < N_VRS; i++) {
        const char *name = VR_NAMES[i];
        if (vr_str[i] == NULL) {
            vr_str[i] = PyUnicode_InternFromString(name);
            if (vr_str[i] == NULL)
                return NULL;
        }
        vr_table[(name[0] - 'A') * 26 + (name[1] - 'A')] = (unsigned char)(i + 1);
        vr_long[i] = 0;
        for (size_t j = 0; j < sizeof(LONG_VR_NAMES) / sizeof(LONG_VR_NAMES[0]); j++)
            if (strcmp(name, LONG_VR_NAMES[j]) == 0)
                vr_long[i] = 1;
        if (strcmp(name, "SQ") == 0) vr_sq = i;
        if (strcmp(name, "UN") == 0) vr_un = i;
        if (strcmp(name, "US") == 0) vr_us = i;
        if (strcmp(name, "SS") == 0) vr_ss = i;
        if (strcmp(name, "OB") == 0) vr_ob = i;
        if (strcmp(name, "OW") == 0) vr_ow = i;
    }
    if (str_need == NULL && (str_need = PyUnicode_InternFromString("need")) == NULL)
        return NULL;
    if (str_data == NULL && (str_data = PyUnicode_InternFromString("data")) == NULL)
        return NULL;
    if (str_us_or_ss == NULL && (str_us_or_ss = PyUnicode_InternFromString("US or SS")) == NULL)
        return NULL;
    return PyModule_Create(&module);
}

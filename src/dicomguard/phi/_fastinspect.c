/* Optional C accelerator of the PHI inspector's pass over raw records.
 *
 * walk(ctx, records, data, out) -> (flags, private_present) does exactly what
 * dicomguard.phi.inspector.walk_records does (that Python function is the reference, and the
 * tests compare the two on every bundled file and on random records): the same containers
 * get the same entries in the same order, and the same callbacks (the slow public lookup,
 * the private keyword lookup) are called for the same tags. Records are the reader's raw
 * records (path, tag, vr, start, stop, length, creator); values are data[start:stop].
 *
 * The one difference in form: walk_records filters the records first (a list comprehension)
 * and then loops; here the filter is applied record by record. The slow public lookup may add a
 * tag to the quiet set during the pass; a later record of that tag is then skipped here and
 * passed over by the loop there (its entry has no identifying info and its VR is not a
 * scanned one, or it would not be skipped), so the results are the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define OVERLAY_FLAG 4L  /* RiskFlag.OVERLAY (a test checks these) */
#define CURVE_FLAG 8L    /* RiskFlag.CURVE */

static int
is_pad(unsigned char c)
{
    return c == ' ' || c == 0;
}

/* whether data[start:stop] is padding only (spaces and NULs) */
static int
padding_only(const unsigned char *p, Py_ssize_t start, Py_ssize_t stop)
{
    for (Py_ssize_t i = start; i < stop; i++)
        if (!is_pad(p[i]))
            return 0;
    return 1;
}

/* counter[key] = counter.get(key, 0) + 1 */
static int
count(PyObject *counter, PyObject *key)
{
    PyObject *old = PyDict_GetItemWithError(counter, key);
    if (old == NULL && PyErr_Occurred())
        return -1;
    long n = 0;
    if (old != NULL) {
        n = PyLong_AsLong(old);
        if (n == -1 && PyErr_Occurred())
            return -1;
    }
    PyObject *v = PyLong_FromLong(n + 1);
    if (v == NULL)
        return -1;
    int r = PyDict_SetItem(counter, key, v);
    Py_DECREF(v);
    return r;
}

/* list.append((a, b, c)) or with 5 items; steals nothing */
static int
append_tuple(PyObject *list, Py_ssize_t n, PyObject *a, PyObject *b, PyObject *c,
             PyObject *d, PyObject *e)
{
    PyObject *t = n == 3 ? PyTuple_Pack(3, a, b, c) : PyTuple_Pack(5, a, b, c, d, e);
    if (t == NULL)
        return -1;
    int r = PyList_Append(list, t);
    Py_DECREF(t);
    return r;
}

static int
contains(PyObject *set, PyObject *key)
{
    return PySet_Contains(set, key);
}

PyDoc_STRVAR(walk_doc,
"walk(ctx, records, data, out) -> (flags, private_present)\n\n"
"dicomguard.phi.inspector.walk_records in C (see there and the top of this file).");

static PyObject *
walk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "walk() takes 4 arguments");
        return NULL;
    }
    PyObject *ctx = args[0], *records = args[1], *data = args[2], *out = args[3];
    if (!PyTuple_Check(ctx) || PyTuple_GET_SIZE(ctx) != 12 || !PyList_Check(records) ||
        !PyBytes_Check(data) || !PyTuple_Check(out) || PyTuple_GET_SIZE(out) != 8) {
        PyErr_SetString(PyExc_TypeError, "walk(): bad arguments");
        return NULL;
    }
    PyObject *quiet = PyTuple_GET_ITEM(ctx, 0), *scan_vrs = PyTuple_GET_ITEM(ctx, 1),
             *text_vrs = PyTuple_GET_ITEM(ctx, 2), *public = PyTuple_GET_ITEM(ctx, 3),
             *slow = PyTuple_GET_ITEM(ctx, 4), *private_kw = PyTuple_GET_ITEM(ctx, 5),
             *private_keyword = PyTuple_GET_ITEM(ctx, 6), *name_tags = PyTuple_GET_ITEM(ctx, 7),
             *id_tags = PyTuple_GET_ITEM(ctx, 8), *all_detectors = PyTuple_GET_ITEM(ctx, 9),
             *private_action = PyTuple_GET_ITEM(ctx, 10),
             *private_category = PyTuple_GET_ITEM(ctx, 11);
    PyObject *attributes = PyTuple_GET_ITEM(out, 0), *attr_cat = PyTuple_GET_ITEM(out, 1),
             *categories = PyTuple_GET_ITEM(out, 2), *candidates = PyTuple_GET_ITEM(out, 3),
             *names = PyTuple_GET_ITEM(out, 4), *ids = PyTuple_GET_ITEM(out, 5),
             *creators = PyTuple_GET_ITEM(out, 6), *hits = PyTuple_GET_ITEM(out, 7);
    if (!PyAnySet_Check(quiet) || !PyAnySet_Check(scan_vrs) || !PyAnySet_Check(text_vrs) ||
        !PyDict_Check(public) || !PyDict_Check(private_kw) || !PyAnySet_Check(name_tags) ||
        !PyAnySet_Check(id_tags) || !PyDict_Check(attributes) || !PyDict_Check(attr_cat) ||
        !PySet_Check(categories) || !PyList_Check(candidates) || !PyList_Check(names) ||
        !PyList_Check(ids) || !PySet_Check(creators) || (hits != Py_None && !PyList_Check(hits))) {
        PyErr_SetString(PyExc_TypeError, "walk(): bad context or output types");
        return NULL;
    }
    if (hits == Py_None)
        hits = NULL;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    long flags = 0;
    int private_present = 0;
    PyObject *value = NULL, *key = NULL, *entry = NULL;

    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        PyObject *rec = PyList_GET_ITEM(records, i);
        if (!PyTuple_Check(rec) || PyTuple_GET_SIZE(rec) != 7) {
            PyErr_SetString(PyExc_TypeError, "walk(): a record is not a raw record");
            goto error;
        }
        PyObject *tag_o = PyTuple_GET_ITEM(rec, 1), *vr = PyTuple_GET_ITEM(rec, 2),
                 *creator = PyTuple_GET_ITEM(rec, 6);
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 3));
        if (start == -1 && PyErr_Occurred())
            goto error;
        Py_ssize_t stop = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 4));
        if (stop == -1 && PyErr_Occurred())
            goto error;
        if (start == stop)
            continue;
        if (start < 0 || stop < start || stop > size) {
            PyErr_SetString(PyExc_ValueError, "walk(): a record's value is outside the data");
            goto error;
        }
        int in_scan = contains(scan_vrs, vr);
        if (in_scan < 0)
            goto error;
        if (!in_scan) {
            int q = contains(quiet, tag_o);
            if (q < 0)
                goto error;
            if (q)
                continue;
        }
        unsigned long tag = PyLong_AsUnsignedLong(tag_o);
        if (tag == (unsigned long)-1 && PyErr_Occurred())
            goto error;
        unsigned long group = tag >> 16;

        if (group & 1) {
            if ((tag & 0xFFFF) < 0x1000)
                continue;
            private_present = 1;
            key = PyTuple_Pack(2, tag_o, creator);
            if (key == NULL)
                goto error;
            PyObject *kw = PyDict_GetItemWithError(private_kw, key);
            Py_CLEAR(key);
            if (kw != NULL) {
                Py_INCREF(kw);
            } else {
                if (PyErr_Occurred())
                    goto error;
                kw = PyObject_CallFunctionObjArgs(private_keyword, tag_o, creator, NULL);
                if (kw == NULL)
                    goto error;
            }
            int truthy = PyObject_IsTrue(creator);
            if (truthy < 0 || (truthy && PySet_Add(creators, creator) < 0)) {
                Py_DECREF(kw);
                goto error;
            }
            if (in_scan) {
                if (is_pad(p[start]) && padding_only(p, start, stop)) {
                    Py_DECREF(kw);
                    continue;
                }
                if (stop - start >= 3) {
                    value = PyBytes_FromStringAndSize((const char *)p + start, stop - start);
                    if (value == NULL ||
                        append_tuple(candidates, 3, rec, value, all_detectors, NULL, NULL) < 0) {
                        Py_DECREF(kw);
                        goto error;
                    }
                    Py_CLEAR(value);
                }
            }
            if (count(attributes, kw) < 0) {
                Py_DECREF(kw);
                goto error;
            }
            if (hits != NULL) {
                value = PyBytes_FromStringAndSize((const char *)p + start, stop - start);
                if (value == NULL || append_tuple(hits, 5, rec, value, kw, private_action,
                                                  private_category) < 0) {
                    Py_DECREF(kw);
                    goto error;
                }
                Py_CLEAR(value);
            }
            Py_DECREF(kw);
            continue;
        }

        entry = PyDict_GetItemWithError(public, tag_o);
        if (entry != NULL) {
            Py_INCREF(entry);
        } else {
            if (PyErr_Occurred())
                goto error;
            entry = PyObject_CallOneArg(slow, tag_o);
            if (entry == NULL)
                goto error;
        }
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
            PyErr_SetString(PyExc_TypeError, "walk(): a table entry is not (info, detectors)");
            goto error;
        }
        PyObject *info = PyTuple_GET_ITEM(entry, 0), *detectors = PyTuple_GET_ITEM(entry, 1);
        if (in_scan) {
            int any = PyObject_IsTrue(detectors);
            if (any < 0)
                goto error;
            if (any) {
                if (stop - start >= 3) {
                    value = PyBytes_FromStringAndSize((const char *)p + start, stop - start);
                    if (value == NULL ||
                        append_tuple(candidates, 3, rec, value, detectors, NULL, NULL) < 0)
                        goto error;
                    Py_CLEAR(value);
                }
            } else {
                int is_name = contains(name_tags, tag_o);
                if (is_name < 0)
                    goto error;
                int is_id = 0;
                if (!is_name && (is_id = contains(id_tags, tag_o)) < 0)
                    goto error;
                if (is_name || is_id) {
                    value = PyBytes_FromStringAndSize((const char *)p + start, stop - start);
                    if (value == NULL)
                        goto error;
                    PyObject *pair = PyTuple_Pack(2, value, vr);
                    Py_CLEAR(value);
                    if (pair == NULL)
                        goto error;
                    int r = PyList_Append(is_name ? names : ids, pair);
                    Py_DECREF(pair);
                    if (r < 0)
                        goto error;
                }
            }
        }
        if (info == Py_None) {
            Py_CLEAR(entry);
            continue;
        }
        if (is_pad(p[start])) {
            int is_text = contains(text_vrs, vr);
            if (is_text < 0)
                goto error;
            if (is_text && padding_only(p, start, stop)) {
                Py_CLEAR(entry);
                continue;
            }
        }
        if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 3) {
            PyErr_SetString(PyExc_TypeError, "walk(): info is not (keyword, action, category)");
            goto error;
        }
        PyObject *kw = PyTuple_GET_ITEM(info, 0), *action = PyTuple_GET_ITEM(info, 1),
                 *cat = PyTuple_GET_ITEM(info, 2);
        if (count(attributes, kw) < 0 || PyDict_SetItem(attr_cat, kw, cat) < 0 ||
            PySet_Add(categories, cat) < 0)
            goto error;
        if (group >= 0x5000 && group <= 0x60FF) {
            if (group >= 0x6000) {
                if ((tag & 0xFFFF) == 0x3000)
                    flags |= OVERLAY_FLAG;
            } else if (group <= 0x501E) {
                flags |= CURVE_FLAG;
            }
        }
        if (hits != NULL) {
            value = PyBytes_FromStringAndSize((const char *)p + start, stop - start);
            if (value == NULL || append_tuple(hits, 5, rec, value, kw, action, cat) < 0)
                goto error;
            Py_CLEAR(value);
        }
        Py_CLEAR(entry);
    }
    return Py_BuildValue("(lO)", flags, private_present ? Py_True : Py_False);
error:
    Py_XDECREF(value);
    Py_XDECREF(key);
    Py_XDECREF(entry);
    return NULL;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL, walk_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastinspect",
    "C accelerator of dicomguard.phi.inspector.walk_records (optional).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fastinspect(void)
{
    return PyModule_Create(&module);
}

/*
 * Packet ciphers for uftp-ts (N-API, MIT licensed): one OpenSSL cipher context per key and direction, keyed once,
 * then only re-IVed per datagram.
 *
 * Why native: node:crypto has no way to give an existing cipher a new IV, so every datagram of an encrypted UFTP
 * session cost a createCipheriv (a new context, the AES key schedule and, for GCM, the GHASH key again), several
 * JS-to-C++ calls and three Buffers: about 11 µs per 1400-byte datagram here, where OpenSSL itself needs about 1.1.
 * The crypto is OpenSSL's, the one inside Node (the same library node:crypto uses, through the symbols the node
 * binary exports and the headers shipped with Node); this file only keeps the keyed context.
 *
 * Exports (only when the headers were there at build time and the running node exports the symbols; otherwise
 * nothing, and src/crypto/cipher.ts stays on node:crypto):
 *   cipherOpen(name, key, encrypt, aead, tagLength) -> handle | undefined (OpenSSL does not know the cipher)
 *   cipherRun(handle, iv, aad | null, input, out, outOffset) -> bytes written into out at outOffset, or
 *     -1: authentication failed (GCM tag) or bad padding (CBC), -2: the arguments do not fit (out too small,
 *     wrong IV length), -3: OpenSSL refused a step.
 *   hmacOpen(digest, key) -> handle | undefined
 *   hmacRun(handle, data, zeroFrom, zeroLength, out, outOffset) -> the MAC's length written into out, the MAC of
 *     `data` with zeroLength bytes from zeroFrom taken as zeros (UFTP's HMAC covers the datagram with its
 *     signature field zeroed: a receiver checks it without a copy), or -2 / -3 as above.
 * AEAD (GCM): encrypt writes ciphertext || tag; decrypt takes ciphertext || tag. CBC: PKCS#7 padding, as
 * node:crypto's default. CCM is not handled here (its lengths go into the context before the IV): node:crypto.
 * HMAC: one EVP_MAC context per key, re-initialised per datagram with the key it holds.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cipher.h"

#if defined(__has_include)
#if __has_include(<openssl/evp.h>)
#define HAVE_OPENSSL 1
#endif
#endif

#ifdef HAVE_OPENSSL
#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

typedef struct {
  EVP_CIPHER_CTX *ctx;
  int enc;
  int aead;
  int tag_len;
  int iv_len;
  int block;
} pcipher_t;

static void pcipher_free(napi_env env, void *data, void *hint) {
  pcipher_t *c = data;
  EVP_CIPHER_CTX_free(c->ctx);
  free(c);
}

static int get_bytes(napi_env env, napi_value v, uint8_t **p, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type t;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, &data, &ab, &off) != napi_ok || t != napi_uint8_array) return 0;
  *p = data;
  return 1;
}

static napi_value int_result(napi_env env, int64_t n) {
  napi_value r;
  napi_create_int64(env, n, &r);
  return r;
}

/* The arguments every open takes first: an algorithm name and a key; `a` gets all `want` arguments. */
static int name_and_key(napi_env env, napi_callback_info info, size_t want, napi_value *a, char *name, size_t name_size,
                        uint8_t **key, size_t *klen) {
  size_t argc = want, nlen;
  return napi_get_cb_info(env, info, &argc, a, NULL, NULL) == napi_ok && argc >= want &&
         napi_get_value_string_utf8(env, a[0], name, name_size, &nlen) == napi_ok && get_bytes(env, a[1], key, klen);
}

/* cipherOpen(name, key, encrypt, aead, tagLength) */
static napi_value CipherOpen(napi_env env, napi_callback_info info) {
  napi_value a[5];
  char name[64];
  uint8_t *key;
  size_t klen;
  if (!name_and_key(env, info, 5, a, name, sizeof name, &key, &klen)) return NULL;
  bool enc, aead;
  int32_t tag_len;
  if (napi_get_value_bool(env, a[2], &enc) != napi_ok || napi_get_value_bool(env, a[3], &aead) != napi_ok ||
      napi_get_value_int32(env, a[4], &tag_len) != napi_ok)
    return NULL;
  const EVP_CIPHER *cipher = EVP_get_cipherbyname(name);
  if (!cipher || (int)klen != EVP_CIPHER_get_key_length(cipher) || (aead && (tag_len < 4 || tag_len > 16))) return NULL;
  if (aead && EVP_CIPHER_get_mode(cipher) != EVP_CIPH_GCM_MODE) return NULL;
  if (!aead && EVP_CIPHER_get_mode(cipher) != EVP_CIPH_CBC_MODE) return NULL;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return NULL;
  if (EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, enc ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  pcipher_t *c = malloc(sizeof *c);
  if (!c) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  c->ctx = ctx;
  c->enc = enc ? 1 : 0;
  c->aead = aead ? 1 : 0;
  c->tag_len = aead ? tag_len : 0;
  c->iv_len = EVP_CIPHER_get_iv_length(cipher);
  c->block = EVP_CIPHER_get_block_size(cipher);
  napi_value ext;
  if (napi_create_external(env, c, pcipher_free, NULL, &ext) != napi_ok) {
    pcipher_free(env, c, NULL);
    return NULL;
  }
  return ext;
}

/* cipherRun(handle, iv, aad | null, input, out, outOffset) */
static napi_value CipherRun(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 6) return int_result(env, -2);
  pcipher_t *c;
  if (napi_get_value_external(env, a[0], (void **)&c) != napi_ok || !c) return int_result(env, -2);
  uint8_t *iv, *aad = NULL, *in, *out;
  size_t iv_len, aad_len = 0, in_len, out_len;
  napi_valuetype t;
  napi_typeof(env, a[2], &t);
  int64_t off;
  if (!get_bytes(env, a[1], &iv, &iv_len) || (t != napi_null && t != napi_undefined && !get_bytes(env, a[2], &aad, &aad_len)) ||
      !get_bytes(env, a[3], &in, &in_len) || !get_bytes(env, a[4], &out, &out_len) ||
      napi_get_value_int64(env, a[5], &off) != napi_ok)
    return int_result(env, -2);
  if ((int)iv_len != c->iv_len || off < 0 || (size_t)off > out_len || in_len > INT32_MAX) return int_result(env, -2);
  size_t room = out_len - (size_t)off;
  size_t body = in_len;
  if (c->aead && !c->enc) {
    if (in_len < (size_t)c->tag_len) return int_result(env, -1);
    body = in_len - (size_t)c->tag_len;
  }
  /* what the output needs: CBC encrypt pads to the next whole block, AEAD encrypt adds the tag; decrypts never
   * grow (one update per datagram: nothing held back from an earlier one) */
  size_t need = !c->enc ? body : c->aead ? body + (size_t)c->tag_len : (body / (size_t)c->block + 1) * (size_t)c->block;
  if (room < need) return int_result(env, -2);
  EVP_CIPHER_CTX *x = c->ctx;
  uint8_t *o = out + off;
  int n = 0, m = 0;
  if (EVP_CipherInit_ex(x, NULL, NULL, NULL, iv, -1) != 1) return int_result(env, -3);
  if (c->aead && aad_len > 0 && EVP_CipherUpdate(x, NULL, &n, aad, (int)aad_len) != 1) return int_result(env, -3);
  if (body > 0 && EVP_CipherUpdate(x, o, &n, in, (int)body) != 1) return int_result(env, -3);
  if (!c->enc && c->aead &&
      EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, c->tag_len, in + body) != 1)
    return int_result(env, -3);
  if (body == 0) n = 0;
  if (EVP_CipherFinal_ex(x, o + n, &m) != 1) return int_result(env, c->enc ? -3 : -1);
  int64_t total = (int64_t)n + m;
  if (c->enc && c->aead) {
    if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, c->tag_len, o + total) != 1) return int_result(env, -3);
    total += c->tag_len;
  }
  return int_result(env, total);
}

typedef struct {
  EVP_MAC_CTX *ctx;
  size_t len;
} phmac_t;

static void phmac_free(napi_env env, void *data, void *hint) {
  phmac_t *h = data;
  EVP_MAC_CTX_free(h->ctx);
  free(h);
}

/* hmacOpen(digest, key) */
static napi_value HmacOpen(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char digest[32];
  uint8_t *key;
  size_t klen;
  if (!name_and_key(env, info, 2, a, digest, sizeof digest, &key, &klen)) return NULL;
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (!mac) return NULL;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac); /* the context keeps its own reference */
  if (!ctx) return NULL;
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  phmac_t *h = malloc(sizeof *h);
  if (!h || EVP_MAC_init(ctx, key, klen, params) != 1 || (h->len = EVP_MAC_CTX_get_mac_size(ctx)) == 0) {
    free(h);
    EVP_MAC_CTX_free(ctx);
    return NULL;
  }
  h->ctx = ctx;
  napi_value ext;
  if (napi_create_external(env, h, phmac_free, NULL, &ext) != napi_ok) {
    phmac_free(env, h, NULL);
    return NULL;
  }
  return ext;
}

static const uint8_t zeros[512];

/* hmacRun(handle, data, zeroFrom, zeroLength, out, outOffset) */
static napi_value HmacRun(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 6) return int_result(env, -2);
  phmac_t *h;
  if (napi_get_value_external(env, a[0], (void **)&h) != napi_ok || !h) return int_result(env, -2);
  uint8_t *data, *out;
  size_t len, out_len;
  int64_t zf, zl, off;
  if (!get_bytes(env, a[1], &data, &len) || napi_get_value_int64(env, a[2], &zf) != napi_ok ||
      napi_get_value_int64(env, a[3], &zl) != napi_ok || !get_bytes(env, a[4], &out, &out_len) ||
      napi_get_value_int64(env, a[5], &off) != napi_ok)
    return int_result(env, -2);
  if (zf < 0 || zl < 0 || zl > (int64_t)sizeof zeros || (uint64_t)zf + (uint64_t)zl > len || off < 0 ||
      (uint64_t)off + h->len > out_len)
    return int_result(env, -2);
  size_t n = 0;
  if (EVP_MAC_init(h->ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(h->ctx, data, (size_t)zf) != 1 ||
      EVP_MAC_update(h->ctx, zeros, (size_t)zl) != 1 ||
      EVP_MAC_update(h->ctx, data + zf + zl, len - (size_t)zf - (size_t)zl) != 1 ||
      EVP_MAC_final(h->ctx, out + off, &n, out_len - (size_t)off) != 1)
    return int_result(env, -3);
  return int_result(env, (int64_t)n);
}

void cipher_init(napi_env env, napi_value exports) {
  /* the symbols come from the running node binary; a node without them (unusual) keeps node:crypto */
  if (!dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_new") || !dlsym(RTLD_DEFAULT, "EVP_CipherInit_ex")) return;
  napi_value f;
  if (napi_create_function(env, "cipherOpen", NAPI_AUTO_LENGTH, CipherOpen, NULL, &f) == napi_ok)
    napi_set_named_property(env, exports, "cipherOpen", f);
  if (napi_create_function(env, "cipherRun", NAPI_AUTO_LENGTH, CipherRun, NULL, &f) == napi_ok)
    napi_set_named_property(env, exports, "cipherRun", f);
  if (!dlsym(RTLD_DEFAULT, "EVP_MAC_CTX_new")) return;
  if (napi_create_function(env, "hmacOpen", NAPI_AUTO_LENGTH, HmacOpen, NULL, &f) == napi_ok)
    napi_set_named_property(env, exports, "hmacOpen", f);
  if (napi_create_function(env, "hmacRun", NAPI_AUTO_LENGTH, HmacRun, NULL, &f) == napi_ok)
    napi_set_named_property(env, exports, "hmacRun", f);
}

#else

void cipher_init(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}

#endif

/* Packet ciphers (cipher.c): adds cipherOpen and cipherRun to the addon's exports when OpenSSL is usable. */
#ifndef UFTP_CIPHER_H
#define UFTP_CIPHER_H
#include <node_api.h>
void cipher_init(napi_env env, napi_value exports);
#endif

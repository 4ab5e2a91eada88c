'use strict';
// Loads the compiled addon (built by `node build.js`, which npm runs as this package's install script).
module.exports = require('./build/Release/udp.node');

// s3rver with S3's PUT semantics, for the tests: `node s3rver_atomic.js S3RVER_BIN ARGS...`.
// s3rver 3.7.1 streams a PUT's body straight into the object's file (truncated on open), so a PUT
// whose client dies midway leaves a truncated object, and it replaces a complete object put
// before it. S3 stores a PUT only once its whole body arrived, at once. Here the body is read to
// its end first, then written to a temporary file renamed over the object.
'use strict';
const crypto = require('crypto');
const path = require('path');

const bin = process.argv.splice(2, 1)[0];  // commander reads the rest
const fs = require(require.resolve('fs-extra', { paths: [bin] }));
const Store = require(path.join(path.dirname(bin), '..', 'lib', 'stores', 'filesystem.js'));
const streamed = Store.prototype.putObject;

function wholeBody(content) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let ended = false;
    content.on('data', (c) => parts.push(c));
    content.on('error', reject);
    content.on('aborted', () => reject(new Error('request aborted')));
    content.on('end', () => {
      ended = true;
      if (content.complete === false) reject(new Error('body incomplete'));
      else resolve(Buffer.concat(parts));
    });
    content.on('close', () => ended || reject(new Error('closed before its end')));
  });
}

Store.prototype.putObject = async function putObject(object) {
  if (Buffer.isBuffer(object.content)) return streamed.call(this, object);
  const body = await wholeBody(object.content);
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.mkdirp(path.dirname(objectPath));
  const tmp = `${objectPath}.${crypto.randomBytes(8).toString('hex')}.partial`;
  await fs.writeFile(tmp, body);
  await fs.rename(tmp, objectPath);
  const md5 = crypto.createHash('md5').update(body).digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: body.length, md5 };
};

require(bin);

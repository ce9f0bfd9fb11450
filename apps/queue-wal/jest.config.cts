module.exports = {
  displayName: 'queue-wal',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/apps/queue-wal',
};

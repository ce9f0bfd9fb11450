module.exports = {
  displayName: 'wal',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/wal',
};

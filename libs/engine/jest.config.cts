module.exports = {
  displayName: 'engine',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/engine',
};
